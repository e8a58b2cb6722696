"""One custom OpenAI-compatible provider entry of pi's ``models.json`` (pure).

Used by the pi harness (a scratch ``models.json`` per task) and by ``tracetune serve --pi`` (an
entry added to the user's own ``models.json``).
"""

from __future__ import annotations

PROVIDER = "tracetune"
API_KEY_ENV = "TRACETUNE_PI_API_KEY"
#: Server quirks shared by transformers serve and vLLM: system role, no reasoning_effort/store, max_tokens.
DEFAULT_COMPAT = {"supportsDeveloperRole": False, "supportsReasoningEffort": False, "supportsStore": False,
                  "maxTokensField": "max_tokens"}


def provider_entry(base_url: str, model_name: str, *, max_tokens: int, context_window: int,
                   compat: dict | None = None, api_key: str = API_KEY_ENV) -> dict:
    """One custom OpenAI-compatible provider of pi's ``models.json`` (``apiKey``: an env var name or a literal)."""
    model = {"id": model_name, "name": model_name, "reasoning": False, "input": ["text"],
             "contextWindow": context_window, "maxTokens": max_tokens}
    return {"baseUrl": base_url.rstrip("/"), "api": "openai-completions", "apiKey": api_key,
            "compat": {**DEFAULT_COMPAT, **(compat or {})}, "models": [model]}
