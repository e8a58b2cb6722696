"""Settings of the live agent loop (either harness: tracetune's built-in loop or the real pi CLI).

``sandbox`` says how the model's commands are confined (``tracetune.eval.sandbox``
has what runs where in each mode); ``allow_unsandboxed = true`` is its
deprecated spelling of ``sandbox = "unsandboxed"``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracetune.errors import TracetuneError
from tracetune.eval import sandbox as sb
from tracetune.eval.live.tasks import Split
from tracetune.eval.sandbox import SandboxLimits, SandboxMode, SandboxSetting


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
    sandbox: SandboxSetting = Field("auto", description=(
        "How the model's commands are confined: 'auto' (bubblewrap where it works, else 'workspace-tools'), "
        "'bwrap' (require bubblewrap), 'workspace-tools' (no shell for the model: read/write/edit/ls/find/grep "
        "inside the workspace only), 'unsandboxed' (plain host processes: no isolation!)"))
    allow_unsandboxed: bool | None = Field(None, description="Deprecated: true is sandbox = 'unsandboxed'")

    @model_validator(mode="after")
    def _deprecated_alias(self) -> "LiveConfig":
        if self.allow_unsandboxed:
            if "sandbox" in self.model_fields_set and self.sandbox != "unsandboxed":
                raise ValueError(f"allow_unsandboxed = true contradicts sandbox = {self.sandbox!r}: "
                                 "drop allow_unsandboxed (deprecated; sandbox = 'unsandboxed' is the same)")
            self.sandbox = "unsandboxed"
        return self

    def sandbox_mode(self) -> SandboxMode:
        """The mode the loop runs in here (``sandbox.resolve_mode``); a TracetuneError naming the key to change."""
        mode = sb.resolve_mode(self.sandbox)
        if self.harness == "pi" and mode == "workspace-tools":
            problem = sb.bwrap_problem()
            why = problem if self.sandbox == "auto" else 'eval.live.sandbox = "workspace-tools"'
            fix = sb.unusable_hint(problem) if problem else 'set eval.live.sandbox = "auto"'
            raise TracetuneError(
                f"the pi harness needs bubblewrap ({why}): pi's own tools (bash, and files on any path) "
                "cannot be kept inside the workspace without it",
                hint=f'{fix}; or set eval.live.harness = "builtin" (workspace tools without a shell), '
                     'or eval.live.sandbox = "unsandboxed" (formerly allow_unsandboxed = true) to run pi without isolation')
        return mode

    def limits(self) -> SandboxLimits:
        """The sandbox limits (time, output, memory) each command runs under."""
        return SandboxLimits(timeout_s=self.command_timeout_s, max_output_bytes=self.max_output_bytes, memory_mb=self.memory_mb)
