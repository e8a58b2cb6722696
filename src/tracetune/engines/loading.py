"""What every model load passes to transformers' ``from_pretrained``.

transformers 5 loads with ``use_kernels=True`` unless told otherwise: on a GPU it then
fetches kernel code from the Hugging Face Hub (``kernels-community/...``) while the model
loads. Offline that load fails ("not available in the local cache"), and without the
``kernels`` package it refuses outright. tracetune loads with the Hub kernels off: a
run works offline, and no code is downloaded and run that the user did not ask for.
``[train] hub_kernels = true`` turns them on for training.
"""

from __future__ import annotations

from typing import Any

#: The environment switch transformers reads; child processes (``transformers serve``) get it set to this.
HUB_KERNELS_ENV = {"USE_HUB_KERNELS": "NO"}


def load_kwargs(*, hub_kernels: bool = False) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments: the Hub kernels off unless ``hub_kernels``."""
    return {"use_kernels": hub_kernels}
