"""A scripted OpenAI-compatible chat server on 127.0.0.1, for deterministic harness tests.

Each request to ``/v1/chat/completions`` gets the next scripted reply (a tool
call or a final text), streamed as server-sent events when asked; every
request body is kept in ``requests``. The last reply repeats once the script
runs out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from localhttp import LocalServer, QuietHandler


@dataclass(frozen=True)
class Reply:
    text: str = ""
    tool: str | None = None
    arguments: dict | None = None

    def message(self, n: int) -> dict:
        if self.tool is None:
            return {"role": "assistant", "content": self.text}
        call = {"id": f"call_{n}", "type": "function",
                "function": {"name": self.tool, "arguments": json.dumps(self.arguments or {})}}
        return {"role": "assistant", "content": self.text or None, "tool_calls": [call]}

    @property
    def finish_reason(self) -> str:
        return "stop" if self.tool is None else "tool_calls"


class ScriptedServer(LocalServer):
    def __init__(self, script: list[Reply], model: str = "scripted"):
        self.script, self.model, self.requests = list(script), model, []
        super().__init__(self._handler())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _next(self) -> tuple[int, Reply]:
        n = len(self.requests)
        return n, self.script[min(n - 1, len(self.script) - 1)]

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._json({"object": "list", "data": [{"id": server.model, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                n, reply = server._next()
                if body.get("stream"):
                    self._stream(n, reply)
                else:
                    choice = {"index": 0, "message": reply.message(n), "finish_reason": reply.finish_reason}
                    self._json({"id": f"r{n}", "object": "chat.completion", "model": server.model, "choices": [choice],
                                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

            def _json(self, obj: dict) -> None:
                self.send_json(200, obj)

            def _stream(self, n: int, reply: Reply) -> None:
                message = reply.message(n)
                delta = {"role": "assistant", "content": message.get("content") or ""}
                if "tool_calls" in message:
                    delta["tool_calls"] = [{"index": 0, **message["tool_calls"][0]}]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for choice in ({"index": 0, "delta": delta, "finish_reason": None},
                               {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}):
                    chunk = {"id": f"r{n}", "object": "chat.completion.chunk", "model": server.model,
                             "choices": [choice]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
