"""A tiny student trained (really: full fine-tuning, about a minute) to act: list the files, then say it is done.

The random tiny student never writes a tool call, so serving tests built on it
cannot show one coming back parsed. This one is trained on rendered
conversations with varied system prompts, tools and requests: after a user
request it calls ``bash`` with ``{"command": "ls"}`` (a tool every agent offers,
pi included); after a tool result it replies ``Done.``. Long system prompts
in the mix make it answer the same under an agent's real prompt. Only the
assistant's tokens carry loss.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

CALL = {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}}
REPLY = "Done."
REQUESTS = ["List the files here.", "What is in this folder?", "Show me the project.", "Look around first.",
            "fix the failing test", "Which files are there?", "Start by exploring.", "run the tests please"]
SYSTEMS = [None, "You are a coding agent.", "You are an expert coding assistant. Use the tools to help the user.",
           "Work in the current directory; be brief."]
GUIDELINES = ["Use bash for file operations.", "Read files before you change them.", "Be concise in your responses.",
              "Show file paths clearly.", "Prefer small, exact edits.", "Run the tests after a change.",
              "Do not touch files outside the project.", "Ask when the request is unclear."]


def _long_system(rng: random.Random) -> str:
    lines = [rng.choice(SYSTEMS[1:])] + [f"- {rng.choice(GUIDELINES)}" for _ in range(rng.randint(10, 60))]
    return "\n".join(lines)


WORDS = ("run", "a", "command", "in", "the", "working", "directory", "output", "is", "truncated", "to", "last",
         "lines", "file", "optionally", "give", "timeout", "seconds", "returns", "stdout", "and", "stderr", "full")
PARAMS = {"bash": {"command": "string"}, "read": {"path": "string"}, "write": {"path": "string", "content": "string"},
          "edit": {"path": "string", "oldText": "string", "newText": "string"}}


def _tool(rng: random.Random, name: str) -> dict:
    """A definition of ``name`` with a random description and, sometimes, extra described parameters."""
    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    props = {k: {"type": t} for k, t in PARAMS[name].items()}
    if rng.random() < 0.5:
        props = {k: {**v, "description": text(rng.randint(2, 8))} for k, v in props.items()}
        props["timeout"] = {"type": "number", "description": text(rng.randint(2, 8))}
    spec = {"type": "function", "function": {"name": name, "description": text(rng.randint(3, 50)),
                                             "parameters": {"type": "object", "required": list(PARAMS[name]), "properties": props}}}
    if rng.random() < 0.5:
        spec["strict"] = False
    return spec


def toolset(rng: random.Random) -> list[dict]:
    names = ["bash"] if rng.random() < 0.4 else rng.sample(list(PARAMS), len(PARAMS))
    return [_tool(rng, n) for n in names]


def _examples(rng: random.Random, n: int) -> list[tuple[list[dict], list[dict]]]:
    out = []
    for _ in range(n):
        system = rng.choice(SYSTEMS) if rng.random() < 0.5 else _long_system(rng)
        head = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": rng.choice(REQUESTS)}]
        call = {"role": "assistant", "content": "", "tool_calls": [CALL]}
        result = {"role": "tool", "tool_call_id": "call_1", "name": "bash", "content": rng.choice(["a.py\nb.py", "README.md\nsrc/", "calc.py\ntest_calc.py"])}
        tools = toolset(rng)
        out.append((head + [call], tools))
        out.append((head + [call, result, {"role": "assistant", "content": REPLY}], tools))
    return out


def _encode(tokenizer, messages: list[dict], tools: list[dict]) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template(messages[:-1], tools=tools, tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
    assert whole.startswith(prompt)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(whole, add_special_tokens=False)["input_ids"]
    labels = [-100] * len(p_ids) + ids[len(p_ids):]
    return ids, labels


def train_tool_student(base: Path, out: Path, steps: int = 160, seed: int = 0, lr: float = 3e-3) -> Path:
    """Copy of ``base`` fully fine-tuned to call ``bash ls`` then reply; returns ``out``."""
    import torch
    from transformers import AutoModelForCausalLM

    from tracetune.engines.tokenizer import load_tokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = load_tokenizer(base)
    data = [_encode(tokenizer, m, t) for m, t in _examples(rng, 32)]
    model = AutoModelForCausalLM.from_pretrained(base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.05, total_iters=steps)
    model.train()
    for _ in range(steps):
        batch = rng.sample(data, 6)
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [tokenizer.pad_token_id or 0] * (width - len(i)) for i, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    if loss.item() > 0.1:
        raise AssertionError(f"the tool student did not learn its two answers (loss {loss.item():.3f})")
    shutil.copytree(base, out)
    model.save_pretrained(out)
    return out
