"""Push the selected adapter, its card and optionally the merged model to the Hugging Face Hub.

Only when a repo id is configured and a token is found in the environment
variable the config names (the config never holds the token itself). Repos
are created private unless asked otherwise. The adapter and the card go to
the repo root (``PeftModel.from_pretrained(repo_id)`` works); the merged model,
when pushed, goes to ``merged/`` (``AutoModelForCausalLM.from_pretrained(repo_id,
subfolder="merged")``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tracetune.errors import TracetuneError


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str
    private: bool
    uploaded: list[str] = field(default_factory=list)  # path_in_repo of each uploaded folder


def token_from_env(name: str) -> str | None:
    """The Hub token from the environment variable ``name`` (None when unset or empty)."""
    return os.environ.get(name) or None


def push_to_hub(
    repo_id: str,
    adapter_dir: Path,
    token: str,
    private: bool = True,
    merged_dir: Path | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Create (or reuse) ``repo_id`` and upload the adapter folder (with README.md) and optionally merged/."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if not (Path(adapter_dir) / "README.md").is_file():
        raise TracetuneError(f"{adapter_dir} has no README.md model card", hint="run the card stage before publishing")
    api = HfApi(token=token, endpoint=endpoint)
    uploaded = ["."]
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id, folder_path=str(adapter_dir), repo_type="model",
            commit_message="tracetune: LoRA adapter and model card",
        )
        if merged_dir is not None:
            api.upload_folder(
                repo_id=repo_id, folder_path=str(merged_dir), path_in_repo="merged", repo_type="model",
                commit_message="tracetune: merged model",
            )
            uploaded.append("merged")
    except HfHubHTTPError as exc:
        raise TracetuneError(
            f"pushing to the Hub repo {repo_id} failed: {exc}",
            hint="check the token has write access and the repo id is yours (namespace/name)",
        ) from None
    return PushResult(repo_id=repo_id, url=str(url), private=private, uploaded=uploaded)
