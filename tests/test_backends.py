"""Generation backends: transformers (tiny student), OpenAI-compatible HTTP (a real local server), vLLM (a fake one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from localhttp import LocalServer, QuietHandler
from tracetune.errors import TracetuneError
from tracetune.eval.backends import BackendSet
from tracetune.eval.backends.base import GenerationRequest
from tracetune.eval.backends.openai_backend import OpenAIBackend
from tracetune.engines.vllm import VLLMServeSpec, serve_command
from tracetune.eval.backends.vllm_backend import VLLMServer
from tracetune.eval.config import BackendConfig
from tracetune.engines.serve import free_port

TOOLS = [{"type": "function", "function": {"name": "read", "description": "Read a file",
                                           "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]


def request(text: str, **kw) -> GenerationRequest:
    messages = [{"role": "system", "content": "You are a coding agent."}, {"role": "user", "content": text}]
    return GenerationRequest(messages=messages, tools=TOOLS, **kw)


# ---------------------------------------------------------------- OpenAI-compatible server stub


class ChatStub(QuietHandler):
    """Answers /v1/chat/completions like an OpenAI server; the user text picks the answer."""

    seen: list[dict] = []

    def do_GET(self):
        self._send(200, {"object": "list", "data": [{"id": "base"}, {"id": "tuned"}]} if self.path == "/v1/models" else {"error": "no"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ChatStub.seen.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": {"message": "not found"}})
        user = body["messages"][-1]["content"]
        if user == "too long":
            return self._send(400, {"error": {"message": "context length exceeded"}})
        if user == "server call":
            msg = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "x1", "type": "function", "function": {"name": "read", "arguments": json.dumps({"path": "a.py"})}}]}
        elif user == "text call":
            msg = {"role": "assistant", "content": '<tool_call>\n{"name": "read", "arguments": {"path": "b.py"}}\n</tool_call>'}
        elif user == "broken call":
            msg = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "x1", "type": "function", "function": {"name": "read", "arguments": '{"path": '}}]}
        else:
            msg = {"role": "assistant", "content": f"echo: {user}"}
        finish = "length" if user == "long" else ("tool_calls" if "call" in user else "stop")
        self._send(200, {"id": "c", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})

    def _send(self, code, payload):
        self.send_json(code, payload)


@pytest.fixture()
def stub_server():
    ChatStub.seen = []
    with LocalServer(ChatStub) as server:
        yield f"http://127.0.0.1:{server.port}/v1"


def test_openai_backend_reads_server_and_text_tool_calls(stub_server):
    backend = OpenAIBackend(stub_server, "tuned", api_key="sk-test", concurrency=3)
    gens = backend.generate([request("server call"), request("text call"), request("hello"), request("long")])
    assert [(c.name, c.arguments) for c in gens[0].message.tool_calls] == [("read", {"path": "a.py"})]
    assert [(c.name, c.arguments) for c in gens[1].message.tool_calls] == [("read", {"path": "b.py"})]
    assert gens[2].message.content == "echo: hello" and gens[2].finished
    assert not gens[3].finished
    assert gens[0].prompt_tokens == 11 and gens[0].completion_tokens == 7
    sent = ChatStub.seen[0]
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"]["model"] == "tuned" and sent["body"]["tools"] == TOOLS
    assert sent["body"]["temperature"] == 0.0 and sent["body"]["max_tokens"] == 256


def test_openai_backend_sends_string_arguments_and_no_metadata(stub_server):
    history = [{"role": "user", "content": "go"},
               {"role": "assistant", "content": "", "tracetune": {"trainable": True},
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"path": "a"}}}]},
               {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "x"},
               {"role": "user", "content": "hello"}]
    OpenAIBackend(stub_server, "m", api_key="").generate([GenerationRequest(messages=history, tools=[])])
    body = ChatStub.seen[0]["body"]
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"path": "a"}'
    assert all("tracetune" not in m for m in body["messages"])
    assert "tools" not in body and ChatStub.seen[0]["auth"] is None


def test_openai_backend_records_bad_output_and_rejected_requests(stub_server):
    gens = OpenAIBackend(stub_server, "m", api_key="").generate([request("broken call"), request("too long")])
    assert gens[0].message is None and gens[0].parse_error == "invalid_json"
    assert gens[1].message is None and gens[1].parse_error == "request_error"
    assert "context length" in gens[1].raw


def test_openai_backend_unreachable_or_wrong_path_is_a_user_error(stub_server):
    with pytest.raises(TracetuneError, match="HTTP 404"):
        OpenAIBackend(stub_server.removesuffix("/v1"), "m", api_key="").generate([request("hi")])
    with pytest.raises(TracetuneError, match="cannot reach"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key="", timeout_s=2).generate([request("hi")])


def test_backend_set_openai_names_models(stub_server):
    cfg = BackendConfig(kind="openai", base_url=stub_server, base_model_name="base", tuned_model_name="tuned")
    with BackendSet(cfg, "/models/base") as backends:
        tuned = backends.open("tuned")
        tuned.generate([request("hello")])
    assert ChatStub.seen[-1]["body"]["model"] == "tuned"
    with pytest.raises(TracetuneError, match="tuned_model_name"):
        BackendSet(BackendConfig(kind="openai", base_url=stub_server), "b").open("tuned")


# ---------------------------------------------------------------- vLLM: command line and readiness


def test_vllm_serve_command(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 24}))
    cmd = serve_command(VLLMServeSpec("Qwen/Qwen2.5-0.5B-Instruct", "base", adapter, "tuned", tokenizer=str(adapter),
                                      port=8123, seed=3, extra_args=["--max-model-len", "8192"]))
    assert cmd[:3] == ["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct"]
    joined = " ".join(cmd)
    assert "--port 8123" in joined and "--served-model-name base" in joined and "--seed 3" in joined
    assert f"--enable-lora --lora-modules tuned={adapter}" in joined
    assert "--max-lora-rank 32" in joined  # r=24 rounded up to a rank vLLM accepts
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in joined
    assert f"--tokenizer {adapter}" in joined
    assert cmd[-2:] == ["--max-model-len", "8192"]
    plain = serve_command(VLLMServeSpec("m", "m"))
    assert "--enable-lora" not in plain and "--max-lora-rank" not in plain


def test_vllm_missing_executable_is_a_clear_error(tmp_path):
    server = VLLMServer(VLLMServeSpec("m", "m", executable="no-such-vllm-here"), tmp_path / "log")
    with pytest.raises(TracetuneError, match="vllm") as info:
        server.start()
    assert "own environment" in info.value.hint


FAKE_VLLM = '''#!{python}
"""A stand-in for `vllm serve`: answers /v1/models after a delay, then chats like the stub."""
import json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
args = sys.argv[1:]
print("fake vllm", " ".join(args), flush=True)
if "--fail" in args:
    print("CUDA out of memory", flush=True); sys.exit(3)
port = int(args[args.index("--port") + 1])
time.sleep(float({delay!r}))
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def _send(self, payload):
        data = json.dumps(payload).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def do_GET(self):
        self._send({{"data": [{{"id": "base"}}]}})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send({{"choices": [{{"message": {{"role": "assistant", "content": "served " + body["model"]}}, "finish_reason": "stop"}}]}})
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def _fake_vllm(tmp_path: Path, delay: float = 0.5) -> Path:
    exe = tmp_path / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable, delay=delay))
    exe.chmod(0o755)
    return exe


def test_vllm_backend_waits_for_the_server_and_routes_models(tmp_path):
    exe = _fake_vllm(tmp_path)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    cfg = BackendConfig(kind="vllm", vllm_executable=str(exe), vllm_port=free_port(), base_model_name="base", startup_timeout_s=20)
    with BackendSet(cfg, "/models/base", adapter, log_dir=tmp_path) as backends:
        base, tuned = backends.open("base"), backends.open("tuned")
        assert base.generate([request("hi")])[0].message.content == "served base"
        assert tuned.generate([request("hi")])[0].message.content == "served tuned"
        process = backends._server.process
    assert process.poll() is not None  # closing the set stopped the server
    assert "--lora-modules tuned=" in (tmp_path / "vllm_server.log").read_text()


def test_vllm_server_that_dies_reports_its_log(tmp_path):
    exe = _fake_vllm(tmp_path)
    spec = VLLMServeSpec("m", "m", executable=str(exe), port=free_port(), extra_args=["--fail"])
    with pytest.raises(TracetuneError, match="CUDA out of memory"):
        VLLMServer(spec, tmp_path / "log", startup_timeout_s=20, poll_s=0.1).start()


def test_vllm_server_that_never_answers_times_out(tmp_path):
    exe = _fake_vllm(tmp_path, delay=60)
    server = VLLMServer(VLLMServeSpec("m", "m", executable=str(exe), port=free_port()), tmp_path / "log",
                        startup_timeout_s=1.0, poll_s=0.2)
    with pytest.raises(TracetuneError, match="did not answer"):
        server.start()
    assert server.process is None  # stopped after the failure


# ---------------------------------------------------------------- transformers, with the tiny student


@pytest.fixture(scope="module")
def adapter_dir(tiny_student, tmp_path_factory) -> Path:
    """A LoRA adapter with random (non-zero) weights: enough to make the tuned model differ."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_student),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    return out


def test_transformers_batched_equals_one_by_one_and_keeps_order(tiny_student):
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    reqs = [request("read the file a.py please " * k, max_new_tokens=6) for k in (3, 1, 2)]
    batched = TransformersBackend(tiny_student, device="cpu", batch_size=3)
    together = batched.generate(reqs)
    alone = [batched.generate([r])[0] for r in reqs]
    assert [g.raw for g in together] == [g.raw for g in alone]
    assert [g.prompt_tokens for g in together] == [batched.count_prompt_tokens(r) for r in reqs]
    assert len({g.prompt_tokens for g in together}) == 3
    assert all(g.completion_tokens <= 6 for g in together)
    prompt = batched.render(reqs[0])
    assert prompt.endswith("<|im_start|>assistant\n") and '"name": "read"' in prompt


def test_a_token_budget_splits_a_batch_and_defaults_by_device(tiny_student, monkeypatch):
    from tracetune.eval.backends import transformers_backend as tb

    reqs = [request("read the file a.py please " * k, max_new_tokens=4) for k in (3, 1, 2)]
    assert tb.TransformersBackend(tiny_student, device="cpu").batch_tokens == tb.BATCH_TOKENS
    backend = tb.TransformersBackend(tiny_student, device="cpu", batch_size=3, batch_tokens=1)
    sizes: list[int] = []
    real = backend._generate_batch
    monkeypatch.setattr(backend, "_generate_batch", lambda idx, *rest: sizes.append(len(idx)) or real(idx, *rest))
    backend.generate(reqs)
    assert sizes == [1, 1, 1]  # each prompt alone exceeds the budget of 1 token


def test_transformers_adapter_changes_the_output(tiny_student, adapter_dir):
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    req = [request("hello", max_new_tokens=8)]
    base = TransformersBackend(tiny_student, device="cpu").generate(req)[0]
    tuned_backend = TransformersBackend(tiny_student, adapter_dir, device="cpu")
    assert tuned_backend.name == "tuned"
    tuned = tuned_backend.generate(req)[0]
    assert base.raw != tuned.raw
    assert tuned_backend.generate(req)[0].raw == tuned.raw  # greedy: deterministic


def test_a_merged_adapter_answers_as_the_lora_layers_do(tiny_student, adapter_dir):
    """The tuned model is merged into its weights for speed; its greedy answers do not change."""
    from peft import PeftModel

    from tracetune.eval.backends.transformers_backend import TransformersBackend

    reqs = [request("read the file a.py please " * k, max_new_tokens=10) for k in (1, 3)]
    merged = TransformersBackend(tiny_student, adapter_dir, device="cpu", batch_size=2)
    layered = TransformersBackend(tiny_student, adapter_dir, device="cpu", batch_size=2, merge_adapter=False)
    assert not isinstance(merged.model, PeftModel) and isinstance(layered.model, PeftModel)
    assert [g.raw for g in merged.generate(reqs)] == [g.raw for g in layered.generate(reqs)]
    cast = TransformersBackend(tiny_student, adapter_dir, device="cpu", dtype="bfloat16")
    assert next(cast.model.parameters()).dtype.is_floating_point and str(next(cast.model.parameters()).dtype) == "torch.bfloat16"


def test_transformers_sampling_is_seeded(tiny_student):
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_student, device="cpu")
    a = backend.generate([request("hi", max_new_tokens=8, temperature=1.0, seed=5)])[0].raw
    b = backend.generate([request("hi", max_new_tokens=8, temperature=1.0, seed=5)])[0].raw
    assert a == b


def test_backend_set_refuses_tuned_without_adapter(tiny_student):
    with pytest.raises(TracetuneError, match="no adapter"):
        BackendSet(BackendConfig(), str(tiny_student)).open("tuned")



@pytest.mark.slow
def test_openai_backend_against_transformers_serve_matches_local_generation(tiny_student):
    """A real OpenAI-compatible server (`transformers serve`, tiny student) answers as the local backend does."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from tracetune.eval.backends.transformers_backend import TransformersBackend
    from tracetune.engines.serve import TransformersServer

    req = [request("read a.py", max_new_tokens=8)]
    local = TransformersBackend(tiny_student, device="cpu").generate(req)[0]
    with TransformersServer(tiny_student, name="student") as server:
        served = OpenAIBackend(server.base_url, server.model_name, api_key="").generate(req)[0]
    assert served.message is not None and served.completion_tokens == 8 and not served.finished
    assert served.message.content == local.message.content
    assert served.prompt_tokens == local.prompt_tokens
