"""The secret shapes tracetune looks for itself, and the value filters they share.

Each pattern names a kind (it becomes the placeholder ``<REDACTED:kind:N>``)
and marks the secret part with the named group ``s`` (the whole match when it
has none), so ``PASSWORD=`` or ``Bearer `` stay readable and only the value
goes. Typed token patterns come first: when two patterns claim the same text,
the earlier one names the kind. Context patterns (assignments, headers, URL
passwords, CLI flags) pass their value through ``plausible_value`` so that
code such as ``token = get_token()`` or ``PASSWORD=${PASSWORD}`` is left alone.

Commands that take a password in a known place (``curl -u user:X``,
``mysql -pX``, ``docker login -p X``, ``echo X | sudo -S``) accept any value
there but variables and placeholders (``explicit_value``); secret-named
headers (``X-Api-Key: ...``) need a digit in the value; a password named in
prose (``my password is X``, ``password: X``) needs a digit or a symbol, so
that sentences and type annotations stay (``phrase_value``).

Each pattern also names its hints and, where the regex allows, its ``lead``:
how ``redact_match`` runs it without trying every position.
"""

from __future__ import annotations

import re
from typing import Callable

from tracetune.prepare.redact_match import WORD_RUN, SecretPattern

_B = r"(?<![A-Za-z0-9_\-])"  # token start: not glued to a longer word
_E = r"(?![A-Za-z0-9_\-])"  # token end


def _p(
    kind: str, pattern: str, hints: str = "", flags: int = 0, check: Callable[[str], bool] | None = None,
    lead: int | None = None,
) -> SecretPattern:
    return SecretPattern(kind, re.compile(pattern, flags), check, tuple(hints.split()), lead)


_SECRET_WORD = (
    r"(?:API_?KEY|ACCESS_?KEY|SECRET_?KEY|PRIVATE_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|AUTH)"
)
_CODE_SECRET_WORD = (
    r"(?:password|passwd|secret|token|(?:api|access|private|secret|signing|encryption|master|auth)_?key)"
)
_VALUE = r"[^\s\"'`#;,&(){}\[\]<>$\\]+"
# Values may sit in quotes, escaped ones too (JSON inside a tool result: KEY=\"...\").
_QUOTED_VALUE = r"(?P<q>\\?[\"']?)(?P<s>" + _VALUE + r")(?P=q)(?=[\s;,&\"'`)}\]<>\\]|$)"
# In .env lines & belongs to the value (no query strings there).
_ENV_VALUE = r"(?P<q>\\?[\"']?)(?P<s>[^\s\"'`#;,(){}\[\]<>$\\]+)(?P=q)(?=[\s;,\"'`)}\]<>\\]|$)"

TYPED_PATTERNS: tuple[SecretPattern, ...] = (
    _p(
        "private_key",
        r"-----BEGIN (?P<label>(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"
        r"(?:.{0,20000}?-----END (?P=label)-----|(?:(?:\\[rn]|\s)*[A-Za-z0-9+/=]{16,})*)",
        "private",
        re.DOTALL,
    ),
    _p("private_key", r"PuTTY-User-Key-File-\d+:[^\n]*(?:\n[^\n]*){0,40}?\nPrivate-MAC: [0-9a-f]+", "putty-user-key",
       lead=0),
    _p("aws_access_key_id", _B + r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}" + _E, "akia asia abia acca a3t",
       lead=0),
    _p(
        "aws_secret_access_key",
        r"(?i:aws_?secret_?(?:access_?)?key|secretaccesskey)\\?[\"']?\s*[:=]\s*\\?[\"']?"
        r"(?P<s>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        "secret",
        lead=4,  # "aws_" before "secret"
    ),
    _p("google_api_key", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E, "aiza", lead=0),
    _p("google_oauth_secret", _B + r"GOCSPX-[A-Za-z0-9_\-]{20,}" + _E, "gocspx-", lead=0),
    _p("google_oauth_token", _B + r"ya29\.[0-9A-Za-z_\-]{20,}" + _E, "ya29.", lead=0),
    _p(  # a service-account JSON's key id, quoted, JSON-escaped (inside a tool result) or in YAML/TOML
        "gcp_private_key_id",
        r"private_key_id\\?[\"']?\s*[:=]\s*\\?[\"']?(?P<s>[0-9a-f]{40})(?![0-9A-Za-z])",
        "private_key_id",
        lead=0,
    ),
    _p("azure_key", r"(?:AccountKey|SharedAccessKey)=(?P<s>[A-Za-z0-9+/]{40,}={0,2})", "accountkey= sharedaccesskey=",
       lead=0),
    _p("azure_key", r"[?&]sig=(?P<s>[A-Za-z0-9%+/]{40,}(?:%3D|=){0,2})", "sig=", lead=1),
    _p("azure_key", _B + r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}" + _E, "q~", lead=4),
    _p("github_token", _B + r"(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}" + _E, "ghp_ gho_ ghu_ ghs_ ghr_", lead=0),
    _p("github_token", _B + r"github_pat_[A-Za-z0-9_]{22,}" + _E, "github_pat_", lead=0),
    _p(
        "gitlab_token",
        _B + r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|oas)-[A-Za-z0-9_\-]{20,}" + _E,
        "glpat- gldt- glft- glsoat- glrt- glcbt- glimt- glptt- gloas-",
        lead=0,
    ),
    _p("huggingface_token", _B + r"(?:hf_|api_org_)[A-Za-z0-9]{30,}" + _E, "hf_ api_org_", lead=0),
    _p("anthropic_key", _B + r"sk-ant-[A-Za-z0-9_\-]{20,}" + _E, "sk-ant-", lead=0),
    _p(  # OpenAI and the providers that copied its shape (OpenRouter sk-or-v1-, DeepSeek):
        # a digit and a run of 16 letters/digits somewhere, which kebab-case words never have
        "openai_key",
        _B + r"sk-(?:proj-|svcacct-|admin-|None-|or-v1-)?(?=[A-Za-z0-9_\-]*[0-9])(?=[A-Za-z0-9_\-]*?[A-Za-z0-9]{16})"
        r"[A-Za-z0-9_\-]{20,}" + _E,
        "sk-",
        lead=0,
    ),
    _p("slack_token", _B + r"xox[abposre]-[A-Za-z0-9\-]{10,}" + _E, "xox", lead=0),
    _p("slack_token", _B + r"xapp-\d-[A-Za-z0-9\-]{10,}" + _E, "xapp-", lead=0),
    _p(  # the id and the token: together they let anyone post
        "discord_webhook",
        r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/(?P<s>\d{15,22}/[A-Za-z0-9_\-]{40,})",
        "discord",
        lead=15,  # "https://canary." before "discord"
    ),
    _p("docker_token", _B + r"dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,}" + _E, "dckr_", lead=0),
    _p("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows)/(?P<s>[A-Za-z0-9_/]{20,})", "hooks.slack",
       lead=8),
    _p("stripe_key", _B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _E, "_live_ _test_", lead=2),
    _p("stripe_key", _B + r"whsec_[A-Za-z0-9]{24,}" + _E, "whsec_", lead=0),
    _p("npm_token", _B + r"npm_[A-Za-z0-9]{36}" + _E, "npm_", lead=0),
    _p("pypi_token", _B + r"pypi-AgE[A-Za-z0-9_\-]{50,}" + _E, "pypi-age", lead=0),
    _p("jwt", _B + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*" + _E, "eyj", lead=0),
    _p(  # other services whose tokens show up in agent sessions, by their documented prefixes
        "api_token",
        _B + r"(?:gsk_[A-Za-z0-9]{48,}|r8_[A-Za-z0-9]{37,}|xai-[A-Za-z0-9]{70,}|pplx-[A-Za-z0-9]{40,}"
        r"|dop_v1_[a-f0-9]{64}|lin_api_[A-Za-z0-9]{40}|dapi[a-f0-9]{32}(?:-\d)?|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"
        r"|sbp_[a-f0-9]{40}|hv[sb]\.[A-Za-z0-9_\-]{24,}|ATATT3[A-Za-z0-9_\-=]{100,}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}"
        r"|AGE-SECRET-KEY-1[0-9A-Z]{58})" + _E,
        "gsk_ r8_ xai- pplx- dop_v1_ lin_api_ dapi shpat_ shpss_ shpca_ shppa_ sbp_ hvs. hvb. atatt3 pmak- age-secret",
        lead=0,
    ),
)

_GENERIC_CONTEXT: tuple[SecretPattern, ...] = (
    _p(
        "bearer_token",
        # after "Bearer", or an Authorization header whose value is quoted or has a scheme
        # ("'Authorization': auth_v4" is a variable, not a token)
        r"(?i:\bbearer\s+|\bauthorization\\?[\"']?\s*[:=]\s*"
        r"(?:\\?[\"']\s*(?:(?:bearer|token|basic|digest)\s+)?|(?:bearer|token|basic|digest)\s+))"
        r"(?P<s>[A-Za-z0-9_\-.~+/]{11,}[A-Za-z0-9_\-~+/]=*)(?![A-Za-z0-9_\-.~+/=])",
        "bearer authorization",
        check=lambda v: plausible_value(v),
        lead=0,  # starts with "bearer" or "authorization"
    ),
    _p(
        "url_password",
        r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>]+:(?P<s>[^\s@/\"'<>]+)@(?=[A-Za-z0-9\[])",
        "://",
        check=lambda v: plausible_value(v, min_length=4),
    ),
    _p(
        "env_secret",
        _SECRET_WORD + r"=" + _ENV_VALUE,  # shell and .env style: no spaces around '='
        "key token secret pass pwd credential auth",
        check=lambda v: plausible_value(v, min_length=4, allow_words=True),
        lead=8,  # "PRIVATE_" before "key", every other name begins with its hint or holds it sooner
    ),
    _p(
        "cli_secret",
        r"(?<![A-Za-z0-9_])--?(?i:password|passwd|token|api-key|apikey|secret|access-token|auth-token)(?:=|\s+)"
        + _QUOTED_VALUE,
        "passw token key secret",
        check=lambda v: plausible_value(v),
        lead=9,  # "--access-" before "token"
    ),
    _p(
        "assignment_secret",
        r"(?i)" + _CODE_SECRET_WORD + r"\\?[\"']?\s*[:=]\s*" + _QUOTED_VALUE,
        "key token secret pass pwd credential auth",
        check=lambda v: plausible_value(v) and (strong_value(v) or any(c.isdigit() for c in v)),
        lead=11,  # "encryption_" before "key"
    ),
)

# Commands whose flags take a password: the value is one whatever it looks like (a word, a number),
# unless it is a variable or a placeholder (``explicit_value``). ``[^\n|;&]*?``: same command.
_CMD_ARGS = r"\b[^\n|;&]*?\s"
_ARG_VALUE = r"(?P<q>\\?[\"']?)(?P<s>[^\s\"'\\]+)(?P=q)(?=[\s\"'\\;|&)]|$)"

_COMMAND_CONTEXT: tuple[SecretPattern, ...] = (
    _p(  # curl -u user:password, curl --user=user:password, httpie -a user:password
        "basic_auth",
        r"\b(?:curl|https?)" + _CMD_ARGS + r"(?:-u[ \t]*|--user(?:[ \t]+|=)|-a[ \t]*|--auth(?:[ \t]+|=))"
        r"(?P<q>\\?[\"']?)[^\s:\"'\\]+:(?P<s>[^\s\"'\\]+)(?P=q)(?=[\s\"'\\;|&)]|$)",
        "curl http",
        check=lambda v: explicit_value(v),
        lead=0,
    ),
    _p(  # mysql -pPASSWORD (glued: "-p db" prompts and names a database), mysql --password=PASSWORD
        "cli_password",
        r"\b(?:mysql(?:dump|admin|import|check|show|slap|sh)?|mariadb(?:-dump|-admin)?)" + _CMD_ARGS
        + r"(?:-p|--password=)" + _ARG_VALUE,
        "mysql mariadb",
        check=lambda v: explicit_value(v),
        lead=0,
    ),
    _p(  # docker login -p PASSWORD / --password PASSWORD (not --password-stdin), and its cousins
        "cli_password",
        r"\b(?:docker|podman|buildah|skopeo|nerdctl|oras|helm[ \t]+registry)[ \t]+login" + _CMD_ARGS
        + r"(?:-p[ \t]*|--password(?:[ \t]+|=))" + _ARG_VALUE,
        "login",
        check=lambda v: explicit_value(v),
    ),
    _p(  # echo 'PASSWORD' | sudo -S ...
        "cli_password",
        r"\b(?:echo|printf)[ \t]+(?:-[neE]+[ \t]+)?(?P<q>[\"']?)(?P<s>[^\"'\n|;&]+?)(?P=q)[ \t]*\|[ \t]*"
        r"sudo\b[^\n|;&]*?[ \t]-[A-Za-z]*S(?![\w-])",
        "sudo",
        check=lambda v: explicit_value(v),
    ),
    _p(  # sudo -S ... <<< 'PASSWORD'
        "cli_password",
        r"\bsudo\b[^\n|;&]*?[ \t]-[A-Za-z]*S(?![\w-])[^\n|;&]*?<<<[ \t]*" + _ARG_VALUE,
        "sudo",
        check=lambda v: explicit_value(v),
        lead=0,
    ),
    _p(  # X-Api-Key: VALUE, X-Auth-Token: VALUE, Authorization: VALUE (a header line, or "name": "value")
        # A quoted name needs a quoted value: {'Authorization': auth_header} is a variable.
        "header_secret",
        r"(?i)(?<![\w-])(?:proxy-)?(?:authorization|api-?key|(?:[a-z0-9]+-)+(?:api-?key|(?:auth|access|secret|"
        r"subscription|private|session)-?key|token|secret|auth))"
        r"(?:(?P<q>\\?[\"'])[ \t]*:[ \t]*\\?[\"']|:[ \t]*)(?:(?:bearer|token|basic|digest)[ \t]+)?"
        r"(?P<s>[A-Za-z0-9_\-.~+/]{8,}=*)(?![A-Za-z0-9_\-.~+/=])",
        "authorization key token secret auth",
        check=lambda v: plausible_value(v, min_length=8) and any(c.isdigit() for c in v),
        lead=WORD_RUN,  # the name, hint included, is [a-z0-9-] from a start no word character or hyphen precedes
    ),
    _p(  # prose: "my password is hunter2xyz", "the db password: ...", "password for root was ..."
        "password_phrase",
        r"(?i)(?<![\w-])(?:(?:password|passwd|passphrase|passcode)(?:[ \t]+for[ \t]+[^\s:]{1,40})?"
        r"(?:[ \t]+(?:is|was)|[ \t]*:)|(?:api[ _-]?key|token|secret)[ \t]+(?:is|was))[ \t]+"
        r"(?P<q>[\"'`]?)(?P<s>[^\s\"'`]+?)(?P=q)(?=[\s\"'`,;)]|[.!?](?:\s|$)|$)",
        "pass token secret key",
        check=lambda v: phrase_value(v),
        lead=4,  # "api " before "key"
    ),
)

# The generic ones first: they name the kind where both claim a value (``--password=X`` is ``cli_secret``).
CONTEXT_PATTERNS: tuple[SecretPattern, ...] = _GENERIC_CONTEXT + _COMMAND_CONTEXT

_PLACEHOLDER_WORDS = re.compile(
    r"(?i)^(?:x+|\*+|\.+|-+|null|none|nil|true|false|undefined|redacted|changeme|example|value|"
    r"(?:your|my)[_\-].*|.*[_\-]here|.*[_\-](?:key|token|secret|password)|secret|password|token|api[_\-]?key|"
    r"<.*>|\{.*\}|\$.*|%.*%)$"
)
_IDENTIFIER_CHAIN = re.compile(r"^[A-Za-z_][A-Za-z_\-]*(?:\.[A-Za-z_][A-Za-z_\-]*)*$")  # os.environ, xet-auth
_NUMBER = re.compile(r"^[0-9.:_\-]+$")
_MASKED = re.compile(r"\s|\*{3}|x{3}|\.{3}|…|•")  # spaces, or shown masked: hf_***, sk-xxx, eyJ...
_PATH_LIKE = re.compile(r"^(?:~?/|\.\.?/|[A-Za-z]:\\)|^[\w.\-]+\.(?:json|pem|key|p12|pfx|crt|txt|env|ya?ml|toml|ini)$")


def plausible_value(value: str, min_length: int = 6, allow_words: bool = False) -> bool:
    """Whether a value found next to a secret-sounding name could be a real secret.

    Rejects what code and docs put there instead: empty or short values,
    numbers, booleans, obvious placeholders (``xxx``, ``your-key-here``,
    ``<token>``, ``${VAR}``, ``$VAR``, ``sk-xxx``, ``hf_***``, ``eyJ...``),
    values with spaces (prose, labels), already-redacted text, and plain
    identifiers, kebab-case names or attribute chains without a digit
    (``api_key``, ``xet-auth``, ``os.environ``), which are far more often
    names than passwords.
    ``allow_words`` keeps single words (``.env`` files: ``DB_PASSWORD=postgres``).
    File paths are rejected too (``GOOGLE_APPLICATION_CREDENTIALS=/x/creds.json``
    names where a secret is, it is not one).
    """
    if len(value) < min_length or "REDACTED" in value or _MASKED.search(value):
        return False
    if _NUMBER.match(value) or _PLACEHOLDER_WORDS.match(value) or _PATH_LIKE.match(value):
        return False
    if allow_words and "." not in value:
        return True
    return not _IDENTIFIER_CHAIN.match(value)


def explicit_value(value: str, min_length: int = 3) -> bool:
    """A value typed where only a password can go (``mysql -pX``, ``curl -u user:X``, ``echo X | sudo -S``).

    Words and numbers count (``-proot``, ``-p123456``); variables, command
    substitutions, placeholders and masked or redacted values do not.
    """
    if len(value) < min_length or "REDACTED" in value or _MASKED.search(value):
        return False
    if value[0] in "$%<{`" or "$(" in value or "${" in value:
        return False
    return not _PLACEHOLDER_WORDS.match(value)


_CODE_CHARS = re.compile(r"[()\[\]{}<>$\\]|::")
_PASSWORD_CHARS = re.compile(r"[0-9!@#%^&*+=?~]")


def phrase_value(value: str) -> bool:
    """A password named in prose (``my password is X``): not a plain word, not code, not a path.

    It must hold a digit or a symbol such as ``!@#%&*`` (``hunter2xyz``,
    ``P@ssw0rd``): ``password is required``, ``password: string`` or
    ``password: user.password`` are sentences and code. A password that is a
    plain dictionary word is missed (see the module docstring of ``redact``).
    """
    if not explicit_value(value, min_length=4) or _CODE_CHARS.search(value) or _PATH_LIKE.match(value):
        return False
    return "://" not in value and bool(_PASSWORD_CHARS.search(value))


def strong_value(value: str) -> bool:
    """Specific enough to be replaced everywhere it occurs, not only where it was found.

    At least 10 characters mixing at least two of lower case, upper case and
    digits: a random token or a real password, not a word or a name such as
    ``postgres`` or ``production-db`` that ``KEY=...`` would otherwise erase
    from every command and file that mentions it.
    """
    if len(value) < 10:
        return False
    classes = (
        any(c.islower() for c in value),
        any(c.isupper() for c in value),
        any(c.isdigit() for c in value),
    )
    return sum(classes) >= 2


def classify(value: str, default: str) -> str:
    """The typed kind a value has on its own (a ``ghp_`` token found in ``GITHUB_TOKEN=``)."""
    for pattern in TYPED_PATTERNS:
        if "s" not in pattern.regex.groupindex and pattern.regex.fullmatch(value):
            return pattern.kind
    return default
