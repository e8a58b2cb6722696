"""What redaction removes (``RedactOptions``) and the count of what it removed (``RedactionReport``).

The options are the ``[prepare.redact]`` table of a run config; the report is
``redaction_report.json`` beside the prepared dataset. It counts replacements by
kind and by field and never holds a secret, a path or a user name. The
redaction itself is ``tracetune.prepare.redact``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracetune.prepare.redact_pii import PII_KINDS
from tracetune.prepare.redact_walk import FIELDS


class RedactOptions(BaseModel):
    """What ``redact_sessions`` removes, and what it puts in its place."""

    model_config = ConfigDict(extra="forbid")

    secrets: bool = Field(True, description="Replace secrets (keys, tokens, passwords, private key blocks).")
    paths: bool = Field(True, description="Anonymise home directories and the user names in them.")
    detect_secrets: bool = Field(True, description="Run detect-secrets' plugins after tracetune's own patterns.")
    high_entropy: bool = Field(
        False, description="Also redact quoted high-entropy strings (catches unknown key formats, hits hashes too)."
    )
    pii: bool = Field(
        True,
        description=(
            "Also replace personal data: e-mail addresses, phone numbers, public IP addresses, payment card numbers. "
            "On by default: the traces are the user's own but the model trained on them may be published, and a "
            "model can repeat what it saw; the cost is a placeholder where an address was (in git logs and package "
            "metadata too), and role addresses (noreply@, git@), example domains, private and loopback IPs and "
            "version numbers are left alone. Turn off for a model that stays private and must write real addresses."
        ),
    )
    home: str = Field("/home/user", description="What a POSIX home directory (/Users/NAME, /home/NAME) becomes.")
    user: str = Field("user", description="What a user name becomes (also inside Windows homes).")
    standalone_usernames: bool = Field(True, description="Replace home-directory user names where they stand alone.")
    usernames: list[str] = Field(
        default_factory=list,
        description="More names (3 characters or more) to replace wherever they stand as a whole word.",
    )
    extra_patterns: dict[str, str] = Field(
        default_factory=dict,
        description="kind -> regular expression of more secrets; a named group 's' marks the part to replace.",
    )
    allowlist: list[str] = Field(default_factory=list, description="Values never redacted (e.g. a public test key).")
    numbered: bool = Field(True, description="Number placeholders per kind (<REDACTED:kind:N>) so reuse stays visible.")

    @field_validator("extra_patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, pattern in value.items():
            if not re.fullmatch(r"[a-z0-9_]+", kind):
                raise ValueError(f"extra pattern kind {kind!r}: use lowercase letters, digits and '_'")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"extra pattern {kind!r} is not a valid regular expression: {exc}") from exc
        return value


@dataclass
class RedactionReport:
    """What was removed, by kind. Never holds a secret, a path or a user name."""

    sessions: int = 0
    sessions_changed: int = 0
    texts: int = 0  # distinct text values scanned
    chars: int = 0
    occurrences: Counter = field(default_factory=Counter)  # kind -> replacements (per distinct text)
    distinct: Counter = field(default_factory=Counter)  # kind -> distinct values
    where: dict[str, Counter] = field(default_factory=dict)  # field -> kind -> replacements (per message)
    home_paths: int = 0
    usernames_found: int = 0
    username_mentions: int = 0
    seconds: float = 0.0
    redactor: Applies | None = field(default=None, repr=False, compare=False)  # the Redactor that made it

    def scrub(self, text: str) -> str:
        """``text`` redacted with what this run learned (same placeholders, same user names).

        For strings written next to the dataset that did not come through the
        sessions: file paths in error messages, log lines.
        """
        return self.redactor.apply(text) if self.redactor is not None and text else text

    def to_dict(self) -> dict[str, Any]:
        """Counts only. ``where``: field -> kind -> replacements, counted once per message (a
        shared prefix once) and per field, so a text repeated in many messages counts in each."""
        secret = {k for k in self.occurrences if k not in PII_KINDS}
        pii = {k for k in self.occurrences if k in PII_KINDS}
        return {
            "sessions": self.sessions,
            "sessions_changed": self.sessions_changed,
            "texts_scanned": self.texts,
            "chars_scanned": self.chars,
            "secrets": self._counts(secret),
            "pii": self._counts(pii),
            "where": {f: dict(sorted(c.items())) for f, c in sorted(self.where.items(), key=_field_order) if c},
            "paths": {
                "home_paths": self.home_paths,
                "usernames_found": self.usernames_found,
                "username_mentions": self.username_mentions,
            },
            "options": self._options(),
            "seconds": round(self.seconds, 3),
        }

    def _counts(self, kinds: set[str]) -> dict[str, Any]:
        return {
            "total": sum(self.occurrences[k] for k in kinds),
            "distinct_total": sum(self.distinct[k] for k in kinds),
            "by_kind": {k: self.occurrences[k] for k in sorted(kinds)},
            "distinct_by_kind": {k: self.distinct[k] for k in sorted(kinds) if self.distinct[k]},
        }

    def _options(self) -> dict[str, Any]:
        """Switches and how many user-given values there were (never the values: names are private)."""
        if self.redactor is None:
            return {}
        o = self.redactor.options
        flags = ("secrets", "pii", "paths", "detect_secrets", "high_entropy", "standalone_usernames", "numbered")
        out: dict[str, Any] = {name: getattr(o, name) for name in flags}
        out.update(extra_patterns=len(o.extra_patterns), allowlist=len(o.allowlist), usernames=len(o.usernames))
        return out


class Applies(Protocol):
    """The part of a ``Redactor`` a report uses: its options, and redacting one more text."""

    options: RedactOptions

    def apply(self, text: str) -> str:
        """``text`` with what the redactor learned replaced."""


def _field_order(item: tuple[str, Counter]) -> tuple[int, str]:
    return (FIELDS.index(item[0]) if item[0] in FIELDS else len(FIELDS), item[0])
