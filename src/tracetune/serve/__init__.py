"""Serve a tuned student with an existing engine and plug it into pi (``tracetune serve``).

- ``resolve``: what to serve (run folder, merged model, adapter, Hub id) and its templates.
- ``engines``: ``transformers serve`` (CPU, via the eval harness's ``TransformersServer``) and
  the exact ``vllm serve`` command line (GPU, vLLM's own environment).
- ``pi_config``: add a provider for the served student to the user's pi ``models.json``.
- ``run``: the sequence the CLI drives.

No server of our own: both engines are OpenAI compatible and parse tool calls.
"""
