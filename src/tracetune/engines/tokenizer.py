"""Loading a student's tokenizer the same way in every stage (prepare, train, eval).

Lives in ``prepare`` (the lowest stage that renders with a tokenizer) so that
train and eval import it downwards.
"""

from __future__ import annotations

from pathlib import Path

from tracetune.errors import TracetuneError


def load_tokenizer(path_or_id: str | Path, chat_template: str | None = None, *, require_template: bool = True):
    """Load a tokenizer from a local folder or a hub id; optionally override its chat template.

    For a local folder with a ``tokenizer.json``, the ids of ``AutoTokenizer`` are
    checked against that file on a probe text; when the class chosen for the
    model type rebuilt the pipeline differently, the file is loaded verbatim
    with ``TokenizersBackend`` instead. ``require_template=False`` accepts a
    tokenizer without a chat template (a template is about to be chosen for it).
    """
    from transformers import AutoTokenizer

    local = Path(path_or_id).expanduser()
    source = str(local) if local.is_dir() else str(path_or_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        if local.is_dir() and (local / "tokenizer.json").exists() and not _same_ids(tokenizer, local / "tokenizer.json"):
            from transformers import TokenizersBackend

            tokenizer = TokenizersBackend.from_pretrained(source)
    except OSError as exc:
        raise TracetuneError(
            f"cannot load a tokenizer from {path_or_id}: {exc}",
            hint="pass a local model folder, or a hub id that is in the local cache (tracetune works offline)",
        ) from exc
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    if require_template and not tokenizer.chat_template:
        raise TracetuneError(
            f"the tokenizer of {path_or_id} has no chat template",
            hint="pass --template tool-aware, or --chat-template PATH",
        )
    return tokenizer


PROBE_TEXT = "Hello wörld!\n  def f(x):\n\treturn {\"a\": [1, 2]}  # ok\n\n$ ls -la ~/src/*.py"


def _same_ids(tokenizer, tokenizer_json: Path) -> bool:
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tokenizer_json))
    return raw.encode(PROBE_TEXT, add_special_tokens=False).ids == tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
