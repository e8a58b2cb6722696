"""Push the selected adapter, its card and optionally the merged model to the Hugging Face Hub.

Only when a repo id is configured and a token is found in the environment
variable the config names (the config never holds the token itself). Repos
are created private unless asked otherwise. The adapter and the card go to
the repo root (``PeftModel.from_pretrained(repo_id)`` works); the merged model,
when pushed, goes to a repo of its own (``merged_repo_id``, default
``<repo_id>-merged``) with its own card (``library_name: transformers``,
``base_model_relation: merge``, a link to the adapter), so the Hub shows each
for what it is and ``AutoModelForCausalLM.from_pretrained(merged_repo_id)`` works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tracetune.card.facts import default_merged_repo
from tracetune.errors import TracetuneError


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    url: str
    private: bool
    uploaded: list[str] = field(default_factory=list)  # the repo id of each upload (adapter, merged model)
    merged_repo_id: str | None = None
    merged_url: str | None = None


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
    merged_repo_id: str | None = None,
) -> PushResult:
    """Create (or reuse) ``repo_id`` and upload the adapter folder (with README.md); the merged model, when
    given, goes to ``merged_repo_id`` (default ``<repo_id>-merged``) with its own card."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    card = Path(adapter_dir) / "README.md"
    if not card.is_file():
        raise TracetuneError(f"{adapter_dir} has no README.md model card", hint="run the card stage before publishing")
    api = HfApi(token=token, endpoint=endpoint)
    target, uploaded, merged_url = repo_id, [], None
    merged_repo = (merged_repo_id or default_merged_repo(repo_id)) if merged_dir is not None else None
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id, folder_path=str(adapter_dir), repo_type="model",
            commit_message="tracetune: LoRA adapter and model card",
        )
        uploaded.append(repo_id)
        if merged_dir is not None and merged_repo is not None:
            from tracetune.publish.export import write_merged_card

            target = merged_repo
            write_merged_card(card, Path(merged_dir), adapter_repo=repo_id)  # now with a link to the adapter
            merged_url = str(api.create_repo(merged_repo, private=private, exist_ok=True, repo_type="model"))
            api.upload_folder(
                repo_id=merged_repo, folder_path=str(merged_dir), repo_type="model",
                commit_message="tracetune: merged model and its card",
            )
            uploaded.append(merged_repo)
    except HfHubHTTPError as exc:
        raise TracetuneError(
            f"pushing to the Hub repo {target} failed: {exc}",
            hint="check the token has write access and the repo id is yours (namespace/name)",
        ) from None
    return PushResult(repo_id=repo_id, url=str(url), private=private, uploaded=uploaded,
                      merged_repo_id=merged_repo, merged_url=merged_url)
