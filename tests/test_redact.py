"""Redaction: secrets become typed placeholders, home paths are anonymised, code is left alone."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from tracetune.conversation.types import Episode, Message, ReadWarning, Session, ToolCall
from tracetune.prepare.redact import RedactOptions, Redactor, redact_sessions

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
GH = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"


def redact(text: str, **options) -> str:
    return Redactor(RedactOptions(**options)).apply(text)


def session(*messages: Message, sid="s", **fields) -> Session:
    return Session(id=sid, source=f"/traces/{sid}.jsonl", agent="pi",
                   episodes=(Episode(id=f"{sid}-e", messages=tuple(messages)),), **fields)


# --- secrets --------------------------------------------------------------

@pytest.mark.parametrize("line, kind", [
    (f"export GITHUB_TOKEN={GH}", "github_token"),
    ("aws_secret_access_key = Zx8/Kp2Lm4Nq6Rs8Tu0Vw2Xy4Za6Bc8De0Fg2Hi4", "aws_secret_access_key"),
    ("curl -H 'Authorization: Bearer aB3dE6gH9jK2mN5pQ8sT1vW4yZ7' https://x.io", "bearer_token"),
    ("postgres://app:Pw9xLq2Zr7@db:5432/x", "url_password"),
    ("DB_PASSWORD=postgres", "env_secret"),
    ('secret_key: "k9Xm2Qp7Lr4Zt8Wn"', "assignment_secret"),
    ("mysql --password=Xy9pQ2rS7t shop", "cli_secret"),
    ("token: hf_aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH", "huggingface_token"),
])
def test_each_kind_gets_its_typed_placeholder(line, kind):
    out = redact(line)
    assert f"<REDACTED:{kind}:1>" in out
    secret = line.split("=")[-1] if kind == "env_secret" else None
    assert secret is None or secret not in out


def test_context_around_a_secret_is_kept():
    assert redact(f"export GITHUB_TOKEN={GH} && gh pr list") == "export GITHUB_TOKEN=<REDACTED:github_token:1> && gh pr list"
    assert redact("see https://bob:Pw9xLq2Zr7@example.com/x") == "see https://bob:<REDACTED:url_password:1>@example.com/x"


def test_pem_block_goes_whole_even_when_cut_off():
    body = "\n".join(["MIIEowIBAAKCAQEAx7Lq9Zk2Wm5Pn8Rt3Vy6Bc9Df2Gh5Jk8Lm1Np4Qr7St0Uv3Wx"] * 5)
    full = f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\ndone"
    assert redact(full) == "key:\n<REDACTED:private_key:1>\ndone"
    cut = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n[output truncated]"
    out = redact(cut)
    assert "MIIEow" not in out and out.endswith("[output truncated]")
    escaped = '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\nAbCd\\n-----END PRIVATE KEY-----\\n"'
    assert "MIIEvQ" not in redact(escaped)


def test_same_secret_same_placeholder_everywhere_and_distinct_ones_numbered():
    other = GH[:-4] + "Zz99"
    s1 = session(Message(role="user", content=f"use {GH}"),
                 Message(role="assistant", content="ok", tool_calls=(ToolCall(id="c", name="bash", arguments={
                     "command": f"gh auth login --with-token {GH}"}),)), sid="a")
    s2 = session(Message(role="user", content=f"now {other} and {GH}"), sid="b")
    (r1, r2), report = redact_sessions([s1, s2])
    assert r1.episodes[0].messages[0].content == "use <REDACTED:github_token:1>"
    assert r1.episodes[0].messages[1].tool_calls[0].arguments["command"].endswith("<REDACTED:github_token:1>")
    assert r2.episodes[0].messages[0].content == "now <REDACTED:github_token:2> and <REDACTED:github_token:1>"
    assert report.to_dict()["secrets"]["distinct_by_kind"] == {"github_token": 2}


def test_a_strong_password_is_replaced_where_it_reappears_without_context():
    s = session(Message(role="user", content="my .env has ADMIN_PASSWORD=Tr0ub4dor&3x"),
                Message(role="tool", tool_call_id="c", content="login ok for Tr0ub4dor&3x"))
    (out,), _ = redact_sessions([s])
    assert "Tr0ub4dor" not in json.dumps(asdict(out))


def test_a_weak_value_is_replaced_only_where_it_was_found():
    out = redact("DB_PASSWORD=postgres\nimport postgres\nFROM postgres:16")
    assert out == "DB_PASSWORD=<REDACTED:env_secret:1>\nimport postgres\nFROM postgres:16"


ORDINARY = [
    "commit 3f786850e387550fdab836ed7e6dc881de23001b\nAuthor: A <a@b.c>",
    'id = "550e8400-e29b-41d4-a716-446655440000"',
    '"integrity": "sha512-Zx8Kp2Lm4Nq6Rs8Tu0Vw2Xy4Za6Bc8De0Fg2Hi4JZx8Kp2Lm4Nq6Rs8Tu0Vw2Xy4Za6Bc8De0Fg2Hi4J=="',
    '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==">',
    "token = get_token()\npassword = getpass()\napi_key=api_key,\nself.secret = secret",
    "const apiKey = process.env.OPENAI_API_KEY;\nheaders: { Authorization: `Bearer ${token}` }",
    "PASSWORD=${PASSWORD}\nAPI_KEY=<your-api-key>\nSECRET_KEY=changeme\nTOKEN=xxxxxxxx",
    "interface Login { password: string; token?: Token }",
    "MAX_TOKENS=4096\nTOKEN_LIMIT=100\nKEY_PREFIX=user",
    "@@ -1,3 +1,4 @@\n-const x = 1;\n+const x = 2;\n+const sha = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';",
    "docs: see https://example.com/home/about and https://github.com/org/repo",
    "sk-learn is not a thing; scikit-learn is. desk-top-navigation-bar-item-list",
    'ssh git@github.com\n{"model": "claude-opus-4-5", "cacheRead": 1234, "sessionId": "ffae836b-9420-4060-ac13-7745215f90ff"}',
    # false positives once seen in library code (trl, huggingface_hub, detect-secrets, urllib3, openai)
    "secret_type = 'AWS Access Key'",
    'client(api_key="hf_***")\nclient(api_key="fal-ai-api-key")\nOPENAI_API_KEY=sk-xxx',
    'EXPIRED_TOKEN = "expired_token"\nif constants.HF_HUB_DISABLE_IMPLICIT_TOKEN:\n    return None',
    "v4auth_header = sign(k)\nheaders = {'Authorization': v4auth_header}",
    '"Buffer the body before sending or use bearer authentication."',
    'proxy_url="socks5h://<username>:<password>@proxy-host"',
    'verify_token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."',
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_code_is_left_alone(text):
    assert redact(text) == text


def test_high_entropy_is_opt_in_and_still_spares_hashes():
    line = 'cfg = {"blob": "q8Zr2LpX7mWv4NcT9bKd3JfH6sYa1GeU"}'
    assert redact(line) == line
    assert "q8Zr2LpX7m" not in redact(line, high_entropy=True)
    sha = "x = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'"
    assert redact(sha, high_entropy=True) == sha


def test_options_allowlist_extra_patterns_numbering_and_off_switches():
    assert redact(f"t={GH}", allowlist=[GH]) == f"t={GH}"
    assert redact("ticket ACME-SECRET-42", extra_patterns={"acme": r"ACME-(?P<s>SECRET-\d+)"}) == "ticket ACME-<REDACTED:acme:1>"
    assert redact(f"t {GH}", numbered=False) == "t <REDACTED:github_token>"
    assert redact(f"t {GH} /home/alice/x", secrets=False) == f"t {GH} /home/user/x"
    assert redact(f"t {GH} /home/alice/x", paths=False) == "t <REDACTED:github_token:1> /home/alice/x"


# --- paths ----------------------------------------------------------------

def test_home_directories_and_the_user_name_are_anonymised():
    s = session(
        Message(role="user", content="cd /Users/alice/code/app && whoami"),
        Message(role="tool", tool_call_id="c", content="alice"),
        Message(role="user", content="C:\\Users\\alice\\app and C:\\\\Users\\\\alice\\\\x and ~/.pi/agent/sessions/--Users-alice-code--/"),
        cwd="/home/alice/code/app",
    )
    (out,), report = redact_sessions([s])
    msgs = out.episodes[0].messages
    assert msgs[0].content == "cd /home/user/code/app && whoami"
    assert msgs[1].content == "user"
    assert msgs[2].content == "C:\\Users\\user\\app and C:\\\\Users\\\\user\\\\x and ~/.pi/agent/sessions/--Users-user-code--/"
    assert out.cwd == "/home/user/code/app"
    d = report.to_dict()["paths"]
    assert d["usernames_found"] == 1 and d["home_paths"] == 4 and d["username_mentions"] >= 2
    assert "alice" not in json.dumps(report.to_dict())


def test_generic_and_short_user_names_are_not_replaced_alone():
    text = "ls /home/runner/work /home/ubuntu /Users/al/x\nrunner ubuntu al"
    assert redact(text) == "ls /home/runner/work /home/ubuntu /home/user/x\nrunner ubuntu al"


def test_configurable_home_and_user():
    assert redact("/Users/alice/x then\nalice", home="/home/anon", user="anon") == "/home/anon/x then\nanon"


def test_short_names_only_where_a_user_name_sits_distinctive_ones_everywhere():
    short = "ls /home/mario/.mario/cfg\nmario@laptop:~$ whoami\nmario\nask mario about super-mario ~mario"
    assert redact(short) == "ls /home/user/.mario/cfg\nuser@laptop:~$ whoami\nuser\nask mario about super-mario ~user"
    long = "cd /Users/jdoe42/x; git clone github.com/jdoe42/repo; echo jdoe42"
    assert redact(long) == "cd /home/user/x; git clone github.com/user/repo; echo user"


def test_every_text_field_and_only_text_is_rewritten():
    call = ToolCall(id="c1", name="bash_GH", arguments={"command": f"echo {GH}", "opts": {"env": [f"T={GH}", 3, True]},
                                                       GH: "key kept"}, arguments_raw=f"echo {GH}")
    s = session(
        Message(role="user", content=f"a {GH}"),
        Message(role="assistant", content=f"b {GH}", reasoning=f"c {GH}", tool_calls=(call,), trainable=True),
        Message(role="tool", tool_call_id="c1", name="bash_GH", content=f"d {GH}"),
        cwd=f"/Users/alice/{GH}", system_prompt=f"sys {GH}", parent_ref=f"/Users/alice/{GH}.jsonl",
        warnings=(ReadWarning("bad_field", f"saw {GH}", "/Users/alice/s.jsonl", 1),),
    )
    (out,), report = redact_sessions([s])
    dumped = asdict(out)
    new_call = out.episodes[0].messages[1].tool_calls[0]
    assert new_call.name == "bash_GH"  # tool names untouched (they are the tool's, not the user's)
    assert new_call.arguments["<REDACTED:github_token:1>"] == "key kept"  # a secret used as a key goes too
    assert new_call.arguments["opts"]["env"][1:] == [3, True]
    assert GH not in json.dumps(asdict(out.episodes[0].messages[1].tool_calls[0]))
    where = report.to_dict()["where"]
    assert where["tool_argument_keys"] == {"github_token": 1} and where["tool_arguments"] == {"github_token": 2}
    assert set(where) >= {"user", "assistant_text", "reasoning", "tool_arguments_raw", "tool_result", "system_prompt",
                          "session_metadata", "reader_warnings"}
    for field in ("cwd", "system_prompt", "parent_ref"):
        assert GH not in dumped[field] and "alice" not in dumped[field]
    assert GH not in json.dumps(dumped["warnings"]) and "alice" not in json.dumps(dumped["warnings"])
    msgs = out.episodes[0].messages
    assert all(GH not in (m.content + (m.reasoning or "")) for m in msgs)


def test_shared_messages_stay_shared_and_input_is_untouched():
    m = Message(role="user", content=f"x {GH}")
    s = Session(id="s", source="s", agent="pi", episodes=(Episode(id="a", messages=(m,)), Episode(id="b", messages=(m,))))
    (out,), report = redact_sessions([s])
    assert out.episodes[0].messages[0] is out.episodes[1].messages[0]
    assert m.content == f"x {GH}" and report.sessions_changed == 1


def test_report_has_counts_never_values():
    s = session(Message(role="user", content=f"{GH} DB_PASSWORD=hunter2xyz /Users/alice/x"))
    _, report = redact_sessions([s], RedactOptions(usernames=["alicia"], allowlist=["AKIAIOSFODNN7EXAMPLE"]))
    d = report.to_dict()
    assert d["options"]["usernames"] == 1 and d["options"]["high_entropy"] is False
    assert "alicia" not in json.dumps(d) and "AKIAIOSFODNN7EXAMPLE" not in json.dumps(d)
    assert d["secrets"]["by_kind"] == {"env_secret": 1, "github_token": 1}
    text = json.dumps(d)
    assert GH not in text and "hunter2xyz" not in text and "alice" not in text


@pytest.mark.skipif(not (SHARED / "pi").is_dir(), reason="shared traces absent")
def test_real_pi_session_loses_its_home_paths_and_keeps_its_code():
    from tracetune.readers import pi

    sessions = pi.read(SHARED / "pi" / "before-compaction.jsonl")
    out, report = redact_sessions(sessions)
    text = json.dumps([asdict(s) for s in out])
    assert "/Users/badlogic" not in text and "badlogic" not in text
    assert report.to_dict()["paths"]["home_paths"] > 100
    assert report.to_dict()["secrets"]["total"] == 0  # the recorded session holds no credential
    before = json.dumps([asdict(s) for s in sessions]).replace("/Users/badlogic", "/home/user").replace("badlogic", "user")
    assert text == before


def test_paths_named_by_secret_variables_are_not_secrets():
    text = "export GOOGLE_APPLICATION_CREDENTIALS=/home/alice/creds.json\nSSH_KEY=~/.ssh/id_ed25519\nTLS_KEY=server.key"
    assert redact(text) == "export GOOGLE_APPLICATION_CREDENTIALS=/home/user/creds.json\nSSH_KEY=~/.ssh/id_ed25519\nTLS_KEY=server.key"


def test_a_plain_word_value_is_not_hunted_everywhere():
    out = redact("DEPLOY_KEY=production-db\nssh production-db 'uptime'")
    assert out == "DEPLOY_KEY=<REDACTED:env_secret:1>\nssh production-db 'uptime'"


def test_many_secrets_each_replaced_wherever_it_reappears():
    """Past a handful of known values the search changes strategy; the result must not."""
    values = [f"Qw3rty{i:02d}Zx9pLm" for i in range(40)]
    first = session(*(Message(role="user", content=f"USER{i}_PASSWORD={v}") for i, v in enumerate(values)), sid="a")
    later = session(Message(role="tool", tool_call_id="c", content=" ".join(reversed(values))), sid="b")
    (_, out), _ = redact_sessions([first, later])
    content = out.episodes[0].messages[0].content
    assert content.split() == [f"<REDACTED:env_secret:{i}>" for i in range(40, 0, -1)]


def test_bad_options_are_reported_at_once():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a valid regular expression"):
        RedactOptions(extra_patterns={"acme": "([unclosed"})
    with pytest.raises(ValidationError):
        RedactOptions(high_entropie=True)  # a typo is an error, not a silent default


def test_windows_names_with_spaces_and_non_ascii_names():
    text = "C:\\Users\\Jane Doe\\Documents\\a.txt by Jane Doe\ncd /Users/josé/src\njosé"
    assert redact(text) == "C:\\Users\\user\\Documents\\a.txt by user\ncd /home/user/src\nuser"


def test_names_given_by_the_user_go_everywhere():
    assert redact("ask mario, or bob", usernames=["mario"]) == "ask user, or bob"


def test_tool_arguments_under_secret_keys_are_secrets():
    call = ToolCall(id="c", name="db_connect", arguments={"host": "db.internal", "password": "postgres",
                                                         "opts": {"api_key": "k3y-Value"}, "auth": True})
    s = session(Message(role="assistant", tool_calls=(call,), trainable=True),
                Message(role="tool", tool_call_id="c", content="connected to db.internal as postgres"))
    (out,), report = redact_sessions([s])
    args = out.episodes[0].messages[0].tool_calls[0].arguments
    assert args["password"] == "<REDACTED:argument_secret:1>" and args["opts"]["api_key"] == "<REDACTED:argument_secret:2>"
    assert args["host"] == "db.internal" and args["auth"] is True
    assert out.episodes[0].messages[1].content == "connected to db.internal as postgres"  # a weak value stays local


# --- commands, headers and prose that carry a password ---------------------

@pytest.mark.parametrize("line, secret, kind", [
    ("curl -sf -u deploy:Hx7pQ2rS9t https://api.example.com", "Hx7pQ2rS9t", "basic_auth"),
    ('curl --user "ci:hunter" https://x.io', "hunter", "basic_auth"),
    ("mysql -h db -u root -pS3cr3tPass shop", "S3cr3tPass", "cli_password"),
    ("mysqldump -u admin -proot shop > dump.sql", "root", "cli_password"),
    ("mysql --password=postgres shop", "postgres", "cli_password"),
    ("docker login -u bot -p Rg9xLq2Zr7 registry.io", "Rg9xLq2Zr7", "cli_password"),
    ("docker login --password=plainword registry.io", "plainword", "cli_password"),
    ("echo 'Hunter2pass' | sudo -S apt-get update", "Hunter2pass", "cli_password"),
    ('sudo -S true <<< "letmein99"', "letmein99", "cli_password"),
    ('curl -H "X-Api-Key: 3f786850e387550fdab836ed7e6dc881" https://x.io', "3f786850e387550fdab836ed7e6dc881",
     "header_secret"),
    ("X-Auth-Token: tok9Zr7Lq2Xy4Wv", "tok9Zr7Lq2Xy4Wv", None),
    ('{"x-goog-api-key": "Kq8Lm3Nz5Pr7St9V"}', "Kq8Lm3Nz5Pr7St9V", None),
    ("https://discord.com/api/webhooks/123456789012345678/" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7" * 3,
     "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7", "discord_webhook"),
    ("echo dckr_pat_" + "Ab3dEf6hIj9kLm2nOp5qRs8tU" + " | docker login", "Ab3dEf6hIj9kLm2nOp5qRs8tU", "docker_token"),
    ('{\\"private_key_id\\": \\"3f786850e387550fdab836ed7e6dc881de23001b\\"}', "3f786850e387550fdab836ed7e6dc881de23001b",
     "gcp_private_key_id"),
    ("private_key_id = '3f786850e387550fdab836ed7e6dc881de23001b'", "3f786850e387550fdab836ed7e6dc881de23001b",
     "gcp_private_key_id"),
    ("my password is hunter2xyz, thanks", "hunter2xyz", "password_phrase"),
    ("The password for root was P@ss!word.", "P@ss!word", "password_phrase"),
    ("the api key is ak39XzQ81p", "ak39XzQ81p", "password_phrase"),
])
def test_commands_headers_and_prose_that_carry_a_password(line, secret, kind):
    out = redact(line)
    assert secret not in out, out
    assert kind is None or f"<REDACTED:{kind}:1>" in out, out


COMMANDS_AND_PROSE_LEFT_ALONE = [
    "git push -u origin main\ndocker run -u 1000:1000 img\ndocker run -u www-data:www-data img",
    "mysql -p shop\nmysql -P3306 -h db -p\nmysql -u root -p\"$DB_PASS\" shop",
    "docker login --password-stdin registry.io\ndocker login -p \"$TOKEN\" registry.io",
    "echo \"$PASSWORD\" | sudo -S apt-get update\necho done | sudo tee /etc/x",
    "max-tokens: 4096\ncontent-type: application/json\nx-request-id: abc",
    "headers = {'Authorization': auth_header_v4}",
    "password is required\npassword: string\npassword: getpass()\nPassword: Sorry, try again.",
    "the token is valid\npassword: user.password\npasswd: files systemd",
]


@pytest.mark.parametrize("text", COMMANDS_AND_PROSE_LEFT_ALONE)
def test_commands_and_prose_without_a_password_are_left_alone(text):
    assert redact(text) == text


def test_secret_named_header_keys_in_arguments_are_secrets():
    call = ToolCall(id="c", name="http", arguments={"headers": {"X-Api-Key": "plainvalue", "Authorization": "tokenish"}})
    (out,), _ = redact_sessions([session(Message(role="assistant", tool_calls=(call,), trainable=True))])
    headers = out.episodes[0].messages[0].tool_calls[0].arguments["headers"]
    assert headers == {"X-Api-Key": "<REDACTED:argument_secret:1>", "Authorization": "<REDACTED:argument_secret:2>"}


# --- personal data -----------------------------------------------------------

@pytest.mark.parametrize("text, kind, value", [
    ("Author: Jane Roe <jane.roe+git@corp-mail.co.uk>", "email", "jane.roe+git@corp-mail.co.uk"),
    ("12345+alice@users.noreply.github.com", "email", "12345+alice@users.noreply.github.com"),
    ("call +44 20 7946 0958 today", "phone", "+44 20 7946 0958"),
    ("or (415) 555-2671", "phone", "(415) 555-2671"),
    ("or 415-555-2671.", "phone", "415-555-2671"),
    ("sms +14155552671", "phone", "+14155552671"),
    ("Connected to 93.184.216.34:443", "ip_address", "93.184.216.34"),
    ("bare 1.2.30.4 here", "ip_address", "1.2.30.4"),
    ("inet6 2a00:1450:4001:82b::200e/64", "ip_address", "2a00:1450:4001:82b::200e"),
    ("card 4111 1111 1111 1111 exp 12/29", "payment_card", "4111 1111 1111 1111"),
    ("amex 3782-822463-10005", "payment_card", "3782-822463-10005"),
    ("pan=5555555555554444", "payment_card", "5555555555554444"),
])
def test_personal_data_is_replaced_by_default(text, kind, value):
    out = redact(text)
    assert value not in out and f"<REDACTED:{kind}:1>" in out, out
    assert redact(text, pii=False) == text


PII_LEFT_ALONE = [
    "ssh git@github.com\ngit clone git@gitlab.com:org/repo.git\nnoreply@github.com root@localhost",
    "mail me at someone@example.com or x@y.test\nimg src=icon@2x.png\nlodash@4.17.21 @types/node@20.1.0",
    "y = x@self.weight.T\n@pytest.mark.parametrize('a', [1])\nhttps://bob@gitlab.com/x",
    "listen 127.0.0.1:8000 0.0.0.0 10.0.0.12 192.168.1.20 172.16.4.2 169.254.0.1 ::1 fe80::1 2001:db8::1",
    "ping 8.8.8.8 && dig @1.1.1.1 example.com",
    "version 1.2.3.4 v1.2.3.4 pkg-1.2.3.4 1.2.3.4.5 ==1.2.3.4 1.2.3.4-rc1 '1.0.0.0' 3.5.0.1",
    'd="M 2.874.118 3.176.77.84 1.235"',
    "std::vector<int> abc::def 12:34:56 aa:bb:cc:dd:ee:ff",
    "id 4155552671 date 2024-05-01 ts 1715000000000 snowflake 1234567890123456789",
    "ps: 13143 190 0.0 4341720 550676 ?\nx = 4111111111111112\ny = 2818953098830*x**28 + 4111111111111111*z",
    "@@ -12,7 +12,8 @@ +12 -3\n4111 1111 1111 1112",
]


@pytest.mark.parametrize("text", PII_LEFT_ALONE)
def test_what_is_not_personal_data_is_left_alone(text):
    assert redact(text) == text


def test_luhn():
    from tracetune.prepare.redact_pii import luhn

    assert luhn("4111111111111111") and luhn("378282246310005") and not luhn("4111111111111112")


def test_report_counts_kinds_and_fields_never_values():
    call = ToolCall(id="c", name="bash", arguments={"command": f"echo {GH}", f"{GH}": True})
    s = session(Message(role="user", content="I am jane.roe@corp-mail.com, my password is hunter2xyz"),
                Message(role="assistant", content="ok", tool_calls=(call,), trainable=True),
                Message(role="tool", tool_call_id="c", content="from 93.184.216.34 in /home/alice/x"),
                Message(role="user", content=f"Summary: {GH}", origin="compactionSummary"))
    _, report = redact_sessions([s])
    d = report.to_dict()
    assert d["pii"]["by_kind"] == {"email": 1, "ip_address": 1} and d["options"]["pii"] is True
    assert d["secrets"]["by_kind"] == {"github_token": 3, "password_phrase": 1}
    assert d["where"] == {
        "user": {"email": 1, "password_phrase": 1},
        "tool_arguments": {"github_token": 1},
        "tool_argument_keys": {"github_token": 1},
        "tool_result": {"home_path": 1, "ip_address": 1},
        "summary": {"github_token": 1},
    }
    text = json.dumps(d)
    for value in (GH, "jane.roe", "hunter2xyz", "93.184", "alice"):
        assert value not in text


def test_case_blind_gates_find_the_same_lines_on_lowered_ascii_text():
    """The gates run without their (?i) flag on lowered ASCII text: the lines they pick must not change."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tracetune.prepare import redact_plugins as rp

    assert rp._KEYWORD_LINE in rp._CASELESS and len(rp._CASELESS) >= 5
    words = st.sampled_from(["PASSWORD", "Pwd", "secret", "API_KEY", "xoxb", "Hooks.Slack", "SoftLayer", "Cl-Api-Token",
                             "contrase", "plain", "text", "=", '"', "\n", " ", "ſecret", "KEY"])

    @settings(max_examples=300, deadline=None)
    @given(st.lists(words, max_size=30).map("".join))
    def same(text):
        lowered = text.lower() if text.isascii() else None
        for pattern in rp._CASELESS:
            assert list(rp._lines_with(text, pattern, lowered)) == list(rp._lines_with(text, pattern))

    same()


def test_case_blind_patterns_find_the_same_secrets_on_lowered_ascii_text():
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from tracetune.prepare.redact_patterns import CONTEXT_PATTERNS, TYPED_PATTERNS

    fast = [p for p in TYPED_PATTERNS + CONTEXT_PATTERNS if p.fast_regex is not None]
    assert {p.kind for p in fast} >= {"assignment_secret", "header_secret", "password_phrase"}
    parts = st.sampled_from(["PASSWORD", "Api_Key", "token", "X-Api-Key", "Authorization", "Bearer", "my Password is",
                             "Secret was", " = ", ": ", '"', "'", "\\\"", "Hunter2!", "AbC123xYz789Q", "ghp_x", "\n", " ",
                             "proxy-", "SIGNING_KEY", "passphrase for db", "$VAR", "(", "."])

    found = []

    @settings(max_examples=400, deadline=None)
    @given(st.lists(parts, max_size=24).map("".join))
    @example('token: "AbC123xYz789Q" and Api_Key = Hunter2!')  # so a run that generates no secret still checks one
    def same(text):
        for pattern in fast:
            spans = list(pattern.spans(text))
            assert list(pattern.spans(text, aligned=text.lower())) == spans
            found.extend(spans)

    same()
    for text in ('PASSWORD = "AbC123xYz789Q"', "X-Api-Key: AbC123xYz789Q", "my Password is Hunter2!"):
        spans = [s for p in fast for s in p.spans(text)]
        assert spans and spans == [s for p in fast for s in p.spans(text, aligned=text.lower())]
    assert found  # the generated texts held secrets too


def _led_spans_agree(patterns, text: str, kinds: set[str]) -> None:
    """Each pattern with a ``lead`` finds in ``text`` what it finds trying every position (as ``PatternSet`` calls it)."""
    from dataclasses import replace

    from tracetune.prepare.redact_match import aligned_lower

    aligned = aligned_lower(text, text.lower())  # None with ODD_FOLDS letters: PatternSet then scans everywhere
    for pattern in patterns:
        scanned = list(replace(pattern, lead=None).spans(text, aligned))
        assert list(pattern.spans(text, aligned)) == scanned, pattern.kind
        kinds.update(pattern.kind for _ in scanned)


def _check_leads(patterns, parts, max_size: int, examples: list[str]) -> set[str]:
    """``_led_spans_agree`` on generated texts (some must hold secrets), then on ``examples``: the kinds these hold."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    kinds: set[str] = set()

    @settings(max_examples=600, deadline=None)
    @given(st.lists(parts, max_size=max_size).map("".join))
    def same(text):
        _led_spans_agree(patterns, text, kinds)

    if examples:  # so a run that happens to generate no secret still checks one
        same = example(examples[0])(same)
    same()
    assert kinds  # the generated texts held secrets too
    kinds.clear()
    for text in examples:
        _led_spans_agree(patterns, text, kinds)
    return kinds


def test_patterns_with_a_lead_find_what_a_scan_of_every_position_finds():
    """A pattern with a ``lead`` is tried only near its hints: the secrets it finds must not change, non-ASCII text too."""
    from hypothesis import strategies as st

    from tracetune.prepare.redact_match import PatternSet, aligned_lower
    from tracetune.prepare.redact_patterns import CONTEXT_PATTERNS, TYPED_PATTERNS

    led = [p for p in TYPED_PATTERNS + CONTEXT_PATTERNS if p.lead is not None]
    assert {p.kind for p in led} >= {"assignment_secret", "header_secret", "password_phrase", "cli_secret", "env_secret"}
    parts = st.sampled_from([
        "PASSWORD", "passwd", "Api_Key", "apikey", "ENCRYPTION_KEY", "private_key", "PRIVATE_KEY", "ACCESS_KEY",
        "token", "--access-token", "--api-key", "-", "--", "_", "X-Api-Key", "x-my-service-auth-token", "my-app",
        "Authorization", "proxy-", "Bearer", "my Password is", "api key was", "Secret was", "password for root:",
        " = ", "=", ": ", ":", '"', "'", "\\\"", "Hunter2!", "AbC123xYz789Q", "s3cr3tValue99", "\n", " ", "\t", "$VAR",
        "(", ".", "curl -u bob:", "https://", "mysql -p", "sudo -S cmd <<< ", " is ", "é", "ſecret", "Key", "İ",
        "─", "naïve-", "_key", "9", "X-Api-Key: AbC123xYz789Q", "é-x-auth-token: s3cr3tValue99"])
    kinds = _check_leads(led, parts, 28, ['PASSWORD = "AbC123xYz789Q"', "X-Api-Key: AbC123xYz789Q", "my Password is Hunter2!",
                                           "run --access-token=s3cr3tValue99", "PRIVATE_KEY=s3cr3tValue99",
                                           "é x-auth-token: s3cr3tValue99 ─", "curl -u bob:hunter22 https://x",
                                           "Authorization: Bearer AbC123xYz789Q"])
    assert kinds >= {"assignment_secret", "header_secret", "password_phrase", "cli_secret", "env_secret", "basic_auth",
                     "bearer_token"}
    odd = "\u017fecret = \u017fecretPA\u017f\u017f99"  # no hint in its lowered text, yet a case-blind match
    assert aligned_lower(odd, odd.lower()) is None
    assert [v for _, _, _, v in PatternSet(CONTEXT_PATTERNS).find(odd, None)] == ["\u017fecretPA\u017f\u017f99"]


def test_words_are_found_where_each_starts_overlapping_ones_too():
    import pickle

    from tracetune.prepare.redact_match import Words

    words = Words(["key", "api_key", "ke", "é-x"])
    assert words.starts("éé-x api_key keyé") == {"é-x": [1], "api_key": [5], "ke": [9, 13], "key": [9, 13]}
    assert words.starts("") == {} and Words([]).starts("key") == {}
    again = pickle.loads(pickle.dumps(words))  # the automaton is built again where it is used
    assert again.starts("a key") == {"ke": [2], "key": [2]}


def test_a_pattern_set_finds_what_every_pattern_scanning_everywhere_finds():
    """``PatternSet.find`` skips patterns whose hints are absent and tries the others near them: same secrets."""
    from dataclasses import replace

    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from tracetune.prepare.redact_match import PatternSet, aligned_lower
    from tracetune.prepare.redact_patterns import CONTEXT_PATTERNS, TYPED_PATTERNS

    parts = st.sampled_from(["ghp_", "AbC123xYz789QrStUvWx0123456789abcdEFGH", "sk-ant-", "api03-", "AKIA", "IOSFODNN7EXAMPLE",
                             "xoxb-", "1234567890-", "password", "=", " ", '"', "Bearer ", "token: ", "hf_", "é", "ſ", "\n",
                             "private_key", "-----BEGIN ", "PRIVATE KEY-----", "https://", "bob:", "@host", "glpat-", "Key"])
    found: list = []

    @settings(max_examples=500, deadline=None)
    @given(st.lists(parts, max_size=20).map("".join))
    @example('token: "ghp_AbC123xYz789QrStUvWx0123456789abcdEFGH" password=AbC123xYz789QrStUvWx0123456789abcdEFGH')
    def same(text):
        aligned = aligned_lower(text, text.lower())
        for patterns in (TYPED_PATTERNS, CONTEXT_PATTERNS):
            got = [(p.kind, a, b) for p, a, b, _ in PatternSet(patterns).find(text, aligned)]
            everywhere = [(p.kind, a, b) for p in patterns for a, b, _ in replace(p, lead=None).spans(text, None)]
            assert got == everywhere
            found.extend(got)

    same()
    assert found


def test_gates_made_of_words_find_the_same_lines_with_str_find():
    """Gates that are alternations of words are looked for with ``str.find`` on the lowered text: same lines, non-ASCII too."""
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from tracetune.prepare import redact_plugins as rp
    from tracetune.prepare.redact_match import aligned_lower

    assert rp._KEYWORD_LINE in rp._LITERALS and len(rp._LITERALS) >= 4
    words = st.sampled_from(["PASSWORD", "Pwd", "secret", "API_KEY", "xoxb", "Hooks.Slack", "hooks_slack", "Token",
                             "contrase", "plain", "=", '"', "\n", " ", "ſecret", "KEY", "İ", "é", "ke", "y", "\r\n"])
    lines: list = []

    @settings(max_examples=400, deadline=None)
    @given(st.lists(words, max_size=30).map("".join))
    @example('API_KEY = "x"\nplain\nToken')
    def same(text):
        lowered = text.lower()
        for pattern in rp._LITERALS:
            expected = list(rp._lines_with(text, pattern))
            assert list(rp._lines_with(text, pattern, aligned=aligned_lower(text, lowered))) == expected
            lines.extend(expected)

    same()
    assert lines
    assert aligned_lower("İ key", "İ key".lower()) is None and aligned_lower("ſecret", "ſecret") is None
    assert aligned_lower("é KEY", "é key") == "é key"


def test_personal_data_tried_only_where_it_can_start_finds_what_a_full_scan_finds():
    import re

    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from tracetune.prepare import redact_pii as pii

    scanned_ipv4 = re.compile(r"(?<![\w.\-])(?:\d{1,3}\.){3}\d{1,3}(?![\w\-]|\.\d)")  # the look-behind first
    scanned_ipv6 = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f:]*\d)[0-9A-Fa-f:]{3,39}(?![\w:.])")
    parts = st.sampled_from(["4111", "1111", "4111 1111 1111 1111", "378282246310005", "3782-822463-10005", "81.2.69.160",
                             "1.2.3.4", "+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "+14155552671", "12", "7",
                             ".", "-", " ", "+", "(", ")", "x", "=", "/", "*", "\n", "é", "v", "0", "2001:db8::1", "::",
                             ":", "fe80", "a", "db8", "2606:4700:4700::1111", "1:2:3:4:5:6:7:8", "555", "-2671",
                             "2a00:1450:4009:81f::200e", "abcdef:", "12345:", "g"])
    hits: list = []

    @settings(max_examples=500, deadline=None)
    @given(st.lists(parts, max_size=20).map("".join))
    @example("card 4111 1111 1111 1111 or (415) 555-2671")
    def same(text):
        assert [m.span() for m in pii._IPV4.finditer(text)] == [m.span() for m in scanned_ipv4.finditer(text)]
        assert [m.span() for m in pii._IPV6.finditer(text)] == [m.span() for m in scanned_ipv6.finditer(text)]
        kept = [(m.start(), m.end(), "ip_address", m.group()) for m in scanned_ipv6.finditer(text)
                if (m.group().count(":") == 7 or "::" in m.group()) and sum(1 for g in m.group().split(":") if g) >= 3
                and pii._public(m.group())]
        assert list(pii._ipv6_hits(text)) == kept
        hits.extend(kept)
        for full, start in ((pii._CARD, pii._CARD_START), (pii._PHONE, pii._PHONE_START)):
            got = [m.span() for m in pii.anchored(full, text, (c.start() for c in start.finditer(text)))]
            assert got == [m.span() for m in full.finditer(text)]
            hits.extend(got)

    same()
    assert hits


def test_home_paths_and_names_tried_only_where_they_can_start_give_a_full_scan_s_text():
    import re

    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from tracetune.prepare import redact_paths as rp

    scanned_posix = re.compile(r"(?<![\w.\-~])(?:/Users|/home)/(?P<name>" + rp._NAME + r")(?![\w.\-])")  # look-behind first
    parts = st.sampled_from(["/home/alice", "/Users/bob7", "/users/x", "C:\\Users\\Jane Doe\\x", "C:\\\\Users\\\\al\\\\",
                             "d:/users/ALICE", "~alice", "alice@host", "-Users-alice-", "alice\n", "alice", "bob7", "x",
                             "/", ":", "\\", " ", "~", ".", "-", "é", "ſ", "Users", "home", "\n"])
    changed = []

    @settings(max_examples=400, deadline=None)
    @given(st.lists(parts, max_size=16).map("".join))
    @example("/home/alice/x and alice")
    def same(text):
        fast, full = rp.HomePaths(names=["alice"]), rp.HomePaths(names=["alice"])
        fast.learn(text)
        for regex in (scanned_posix, rp._WINDOWS_HOME):
            for match in regex.finditer(text):
                name = full._name(match)
                if name not in full.names and not full.keep(name):
                    full.names.add(name)
        assert fast.names == full.names
        def counted(rewrite):
            def repl(match):
                new = rewrite(match)
                full.home_paths += new is not None
                return match.group() if new is None else new
            return repl

        expected = scanned_posix.sub(counted(full._posix), text)
        expected = rp._WINDOWS_HOME.sub(counted(full._windows), expected)
        if any(name in expected for name in full.names):
            expected, count = full._names_regex().subn(full.user, expected)
            full.mentions += count
        got = fast.apply(text)
        assert (got, fast.home_paths, fast.mentions) == (expected, full.home_paths, full.mentions)
        changed.append(got != text)

    same()
    assert any(changed)


def test_typed_tokens_tried_only_at_their_prefixes_find_what_a_full_scan_finds():
    from hypothesis import strategies as st

    from tracetune.prepare.redact_patterns import TYPED_PATTERNS

    led = [p for p in TYPED_PATTERNS if p.lead is not None]
    assert len(led) >= len(TYPED_PATTERNS) - 1  # all but the PEM block, whose label can be any length
    run = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v2W3x4Y5z6"
    parts = st.sampled_from([
        "ghp_", "github_pat_", "AKIA", "A3TX", "hf_", "api_org_", "sk-", "sk-ant-", "sk-proj-", "xoxb-", "xapp-1-", "eyJ",
        ".eyJ", "AIza", "GOCSPX-", "ya29.", "?sig=", "&sig=", "1Q~", "abc", "https://", "hooks.slack.com/services/",
        "discord.com/api/webhooks/", "canary.", "ptb.", "123456789012345678/", "sk_live_", "rk_test_", "whsec_", "npm_",
        "pypi-AgE", "gsk_", "dapi", "glpat-", "AccountKey=", "SharedAccessKey=", "aws_secret_access_key = ",
        "private_key_id: ", "0123456789abcdef0123456789abcdef01234567", "PuTTY-User-Key-File-2: x\nPrivate-MAC: ab",
        run, run[:20], "-", "_", ".", " ", "\n", "=", '"', "é", "─", "AGE-SECRET-KEY-1", "PMAK-"])
    kinds = _check_leads(led, parts, 12, ["ghp_" + run, "key=AKIA" + run[:16].upper(), "x hf_" + run + " ─",
                                           "sk-ant-" + run, "eyJ" + run + ".eyJ" + run + ".x", "sk_live_" + run,
                                           "https://hooks.slack.com/services/" + run, "AccountKey=" + run + "=="])
    assert kinds >= {"github_token", "aws_access_key_id", "huggingface_token", "anthropic_key", "jwt", "slack_webhook",
                     "stripe_key", "azure_key"}
