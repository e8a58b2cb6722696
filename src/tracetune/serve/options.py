"""``ServeOptions``: how ``tracetune serve`` serves a student (engine, address, names)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Engine = Literal["transformers", "vllm"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ServeOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Engine = Field("transformers", description="transformers (`transformers serve`, CPU) or vllm (`vllm serve`, GPU, in its own environment).")
    name: str = Field("student", description="Model name clients ask for (with an adapter on vLLM: the LoRA module name).")
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on; 0 picks a free one (transformers only).")
    device: str = Field("cpu", description="transformers: the device to load the model on (cpu, cuda, mps).")
    startup_timeout_s: float = Field(600.0, gt=0, description="Seconds to wait for the server to answer /v1/models.")
    vllm_executable: str = Field("vllm", description="vllm: the `vllm` command of the environment vLLM is installed in.")
    tool_parser: str = Field("hermes", description="vllm: --tool-call-parser (hermes reads our ChatML <tool_call> JSON).")
    vllm_args: tuple[str, ...] = Field((), description="vllm: more `vllm serve` arguments, e.g. ('--max-model-len', '8192').")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (it becomes a file name and a model id)")
        return value
