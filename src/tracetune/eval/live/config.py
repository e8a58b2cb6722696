"""Settings of the live agent loop (either harness: tracetune's built-in loop or the real pi CLI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tracetune.eval.live.tasks import Split
from tracetune.eval.sandbox import SandboxLimits


Harness = Literal["builtin", "pi"]


class LiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    harness: Harness = Field("builtin", description="Who runs the agent loop: 'builtin' (tracetune's loop over a backend) or 'pi' (the real pi CLI against the model served over HTTP)")
    splits: list[Split] = Field(default_factory=lambda: ["heldout"], description="Which task splits to run")
    task_ids: list[str] = Field(default_factory=list, description="Only these tasks (empty: every task of the splits)")
    max_turns: int = Field(8, ge=1, description="Assistant turns per episode before it is stopped")
    max_new_tokens: int = Field(256, ge=1, description="Generation budget per assistant turn")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    seed: int = Field(0, description="Generation seed")
    command_timeout_s: float = Field(20.0, gt=0, description="Time limit of one bash call or check command")
    max_output_bytes: int = Field(16 * 1024, ge=256, description="Output kept from one command; the rest is dropped with a marker")
    memory_mb: int = Field(1024, ge=64, description="Address-space limit of sandboxed commands")
    system_prompt: str | None = Field(None, description="System prompt (default: tracetune's short coding-agent prompt); use the one the student was trained with")
    tools_file: str | None = Field(None, description="prepare's OUT/tools.json, so the model is offered the tool definitions it was trained with (default: tracetune's pi schemas)")
    episode_timeout_s: float = Field(600.0, gt=0, description="pi harness: wall-clock limit of one episode (pi has no turn limit; max_turns applies to the built-in loop only)")
    pi_bin: str | None = Field(None, description="pi harness: path to pi's dist/cli.js (default: $TRACETUNE_PI_BIN, `pi` on PATH, or scripts/install-pi-oracle.sh's install)")
    allow_unsandboxed: bool = Field(False, description="Run commands without bubblewrap where it is missing (no isolation!)")

    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.command_timeout_s, max_output_bytes=self.max_output_bytes, memory_mb=self.memory_mb)
