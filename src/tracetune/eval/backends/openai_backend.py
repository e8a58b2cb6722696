"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint, over plain HTTP (stdlib ``urllib``).

Works with a served student (``transformers serve``, ``vllm serve``) or a
hosted API. Tools go in the request; tool calls come back either parsed by the
server (``message.tool_calls``) or, from a server without a tool parser, as
markers in the text, which ``tracetune.eval.parsing`` then reads. The raw
field of a ``Generation`` is the server's message as JSON, so nothing is lost.

A request the server rejects (HTTP 400/413/422, e.g. a context that is too
long) becomes a failed sample (``parse_error="request_error"``); a server that
cannot be reached or refuses the key stops the run with a ``TracetuneError``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from tracetune.conversation.types import Message, ToolCall
from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Generation, GenerationRequest
from tracetune.eval.parsing import parse_output

SAMPLE_ERRORS = {400, 413, 422}


def to_openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wire messages as the OpenAI API takes them: string arguments, no tracetune metadata."""
    out = []
    for m in messages:
        msg = {k: v for k, v in m.items() if k != "tracetune"}
        if msg.get("tool_calls"):
            msg["tool_calls"] = [_call_with_string_args(c) for c in msg["tool_calls"]]
        out.append(msg)
    return out


def _call_with_string_args(call: dict[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function", {}))
    if not isinstance(fn.get("arguments"), str):
        fn["arguments"] = json.dumps(fn.get("arguments") or {}, ensure_ascii=False)
    return {**call, "type": "function", "function": fn}


class OpenAIBackend:
    """Chat completions from one model name on one server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        name: str | None = None,
        timeout_s: float = 300.0,
        concurrency: int = 4,
        extra_body: dict[str, Any] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.extra_body = extra_body or {}

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat completions request body for ``request``, ``extra_body`` merged in."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(request.messages),
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.tools:
            body["tools"] = request.tools
        return {**body, **self.extra_body}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """One ``Generation`` per request, sent up to ``concurrency`` at a time."""
        if len(requests) <= 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def _one(self, request: GenerationRequest) -> Generation:
        status, body = self._post("/chat/completions", self.payload(request))
        if status in SAMPLE_ERRORS:
            return Generation(raw=body[:2000], message=None, parse_error="request_error", finished=False)
        try:
            data = json.loads(body)
            choice = data["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TracetuneError(
                f"{self.base_url} answered something that is not a chat completion: {body[:200]!r}",
                hint="point base_url at the /v1 root of an OpenAI-compatible server",
            ) from None
        usage = data.get("usage") or {}
        return generation_from_choice(choice, request.tools, usage)

    def _post(self, path: str, payload: dict[str, Any]) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            if exc.code in SAMPLE_ERRORS:
                return exc.code, body
            raise TracetuneError(
                f"{self.base_url}{path} answered HTTP {exc.code}: {body[:300]}",
                hint=_hint_for(exc.code, self.model),
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TracetuneError(
                f"cannot reach {self.base_url}: {reason}",
                hint="start the server first, or check base_url (it should end in /v1)",
            ) from None

    def close(self) -> None:
        """Nothing to release: each request opens its own connection."""
        return None


def _hint_for(code: int, model: str) -> str:
    if code in (401, 403):
        return "set the API key in the environment variable named by backend.api_key_env"
    if code == 404:
        return f"check base_url (it should end in /v1) and that the server serves the model {model!r}"
    return "see the server's log"


def generation_from_choice(choice: dict[str, Any], tools: list[dict] | None, usage: dict[str, Any]) -> Generation:
    """One OpenAI choice to a ``Generation``: server-parsed calls first, else markers in the text."""
    msg = choice.get("message") or {}
    raw = json.dumps(msg, ensure_ascii=False)
    finished = choice.get("finish_reason") != "length"
    counts = {"prompt_tokens": int(usage.get("prompt_tokens") or 0), "completion_tokens": int(usage.get("completion_tokens") or 0)}
    content = msg.get("content") or ""
    reasoning = msg.get("reasoning_content") or msg.get("reasoning") or None
    if not msg.get("tool_calls"):
        parsed = parse_output(content, None, tools=tools)
        message = parsed.message
        if message is not None and reasoning and not message.reasoning:
            message = Message(role="assistant", content=message.content, tool_calls=message.tool_calls, reasoning=reasoning)
        return Generation(raw=raw, message=message, parse_error=parsed.error, finished=finished, **counts)
    calls = []
    for i, call in enumerate(msg["tool_calls"]):
        fn = call.get("function") or {}
        args = fn.get("arguments")
        try:
            args = json.loads(args) if isinstance(args, str) and args.strip() else (args or {})
        except json.JSONDecodeError:
            return Generation(raw=raw, message=None, parse_error="invalid_json", finished=finished, **counts)
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            return Generation(raw=raw, message=None, parse_error="missing_name", finished=finished, **counts)
        if not isinstance(args, dict):
            return Generation(raw=raw, message=None, parse_error="bad_arguments", finished=finished, **counts)
        calls.append(ToolCall(id=str(call.get("id") or f"call_{i}"), name=fn["name"], arguments=args))
    message = Message(role="assistant", content=content.strip(), tool_calls=tuple(calls), reasoning=reasoning)
    return Generation(raw=raw, message=message, finished=finished, **counts)
