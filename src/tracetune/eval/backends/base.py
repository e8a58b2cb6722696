"""One small interface for every generation engine (transformers, vLLM, OpenAI-compatible).

A backend takes wire-shape messages and OpenAI tool definitions and returns
the raw text it generated plus the parsed assistant message. Parsing never
raises: a failure is recorded as ``parse_error`` (a short kind such as
``"invalid_json"``, ``"unclosed_tool_call"``) with ``message`` left ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from tracetune.conversation.types import Message


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, Any]]  # OpenAI/TRL wire shape, system prompt included
    tools: list[dict[str, Any]]  # OpenAI function tool definitions
    max_new_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    raw: str  # the text the model produced, special tokens kept where they carry structure
    message: Message | None  # the parsed assistant message, None when parsing failed
    parse_error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished: bool = True  # False when cut at max_new_tokens (or stopped looping)
    looping: bool = False  # stopped early because it kept repeating one span (never finished)


class Backend(Protocol):
    """A model that can be asked for the next assistant message."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One ``Generation`` per request, in order."""

    def close(self) -> None:
        """Release what the backend holds (model memory, a server process)."""
