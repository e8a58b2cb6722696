"""Library noise off for ``tracetune run``: weight-loading and shard-writing bars, known library warnings.

What it hides: the tqdm bars of transformers ("Loading weights", "Writing
model shards"), huggingface_hub and datasets; transformers' logger below
errors; deprecation, future and user warnings raised inside the ML libraries
(``LIBRARIES``), and a few known ones that name the caller as their origin
(``KNOWN_MESSAGES``). What it keeps: tracetune's own progress and messages
(Rich), errors, and warnings from anything else. ``tracetune run --verbose``
skips it all.

The switches are environment variables the libraries read when imported
(``setdefault``: a value the user set wins, and child processes inherit
them), plus the same switches on libraries already imported.
"""

from __future__ import annotations

import os
import sys
import warnings

LIBRARIES = ("transformers", "peft", "trl", "torch", "accelerate", "datasets", "huggingface_hub", "trackio",
             "tokenizers", "safetensors", "gguf")
ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub's, and transformers' tqdm (read at import)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",  # its fork warning
}
#: library warnings that point at the caller's line (stacklevel), so their module is not the library's
KNOWN_MESSAGES = (
    r".*is deprecated and will be removed in v\d",
    r"Input and output embeddings are no longer tied",
    r"None of the inputs have requires_grad=True",
    r".*use_reentrant parameter should be passed explicitly",
    r".*`torch_dtype` is deprecated",
)
CATEGORIES = (FutureWarning, DeprecationWarning, PendingDeprecationWarning, UserWarning)


def quiet_libraries() -> None:
    """Hide the libraries' bars and known warnings for the rest of this process (and its children)."""
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    origin = rf"({'|'.join(LIBRARIES)})(\..*)?$"
    for category in CATEGORIES:
        warnings.filterwarnings("ignore", category=category, module=origin)
    for message in KNOWN_MESSAGES:
        warnings.filterwarnings("ignore", message=message)
    _already_imported()


def _already_imported() -> None:
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
