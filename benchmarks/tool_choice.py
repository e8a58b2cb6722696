"""Which tool does a run's student rank first, and what would a bigram over the calls score? (run by hand)

    python benchmarks/tool_choice.py --run runs/NAME [--role tuned] [--max-turns N]

Takes the held-out turns the run's eval samples (same seed, same windowing) where the teacher
called a tool. For each, scores the log-probability of ``<tool_call>\\n{"name": "T", "arguments":
{"`` for the four most common tools T, once after the teacher's own text of the turn (A) and once
at the turn's start (B), and prints how often the first-ranked tool is the teacher's, the
always-majority floor, and the mean probability of each name per teacher tool. Then a bigram
baseline from the run's prepared episodes: the previous call's tool predicts the next (fit on the
train split, scored on the eval split). docs/benchmarks.md, "Session 10".
"""

from __future__ import annotations

import argparse
import math
from collections import Counter, defaultdict
from pathlib import Path


def call_prefix(name: str) -> str:
    """How the shipped tool-aware templates open a call to ``name``, up to its first argument."""
    from tracetune.train.decision import TOOL_CALL_OPENER

    return TOOL_CALL_OPENER + '\n{"name": "' + name + '", "arguments": {"'


def transitions(path: Path) -> list[tuple[str, str]]:
    """(previous call's tool or USER/START, this target's first tool) for every target that calls one."""
    from tracetune.eval.fidelity import SamplingStats, read_episodes

    pairs = []
    for episode, _tools, _system in read_episodes(path, SamplingStats()):
        prev = "START"
        for m in episode.messages:
            if m.role == "user":
                prev = "USER"
            if m.is_target and m.tool_calls:
                pairs.append((prev, m.tool_calls[0].name))
            if m.role == "assistant" and m.tool_calls:
                prev = m.tool_calls[0].name
    return pairs


def bigram(prepared: Path) -> None:
    """Print the bigram baseline and the majority floor on the eval split."""
    train, held = transitions(prepared / "train_episodes.jsonl"), transitions(prepared / "eval_episodes.jsonl")
    table: dict[str, Counter] = defaultdict(Counter)
    for prev, tool in train:
        table[prev][tool] += 1
    majority = Counter(t for _, t in train).most_common(1)[0][0]
    guess = {prev: counts.most_common(1)[0][0] for prev, counts in table.items()}
    hits = sum(guess.get(prev, majority) == tool for prev, tool in held)
    floor = Counter(t for _, t in held).most_common(1)[0][1]
    print(f"bigram over {len(train)} train calls, scored on {len(held)} held-out calls: "
          f"{hits / len(held):.3f} (always the most common: {floor / len(held):.3f})")


class Scorer:
    """Log-probabilities of continuations, the logits computed only where they are scored."""

    def __init__(self, backend):
        self.backend, self.tok = backend, backend.tokenizer

    def __call__(self, texts: list[str], start: int) -> list[float]:
        """Summed log-probability of each text's characters from ``start`` on."""
        import torch

        enc = self.tok(texts, add_special_tokens=False, return_offsets_mapping=True, padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        model = self.backend.model
        with torch.no_grad():
            hidden = model.model(input_ids=ids, attention_mask=mask,
                                 position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).last_hidden_state
            out = []
            for r in range(len(texts)):
                offs = enc["offset_mapping"][r]
                at = (mask[r].bool() & (offs[:, 0] >= start) & (offs[:, 1] > offs[:, 0])).nonzero()[:, 0]
                logp = torch.log_softmax(model.lm_head(hidden[r, at - 1]).float(), -1)
                out.append(logp.gather(-1, ids[r, at][:, None]).sum().item())
        return out


def probe(run: Path, role: str, max_turns: int | None, device: str = "auto") -> None:
    """Print the forced-ranking agreement and the per-tool probabilities."""
    from tracetune.eval.backends.transformers_backend import TransformersBackend
    from tracetune.eval.fidelity import SamplingStats, build_candidates, choose_samples, read_episodes
    from tracetune.eval.stage import student_rendering, with_prompt_cap
    from tracetune.pipeline.eval_traces import run_config, run_student
    from tracetune.sweep.selection import selected_adapter

    config = run_config(run)
    prepared = run / "prepare"
    eval_config = with_prompt_cap(config.eval, prepared)
    adapter = selected_adapter(run / "sweep") if role == "tuned" else None
    tokenizer, template = student_rendering(prepared, adapter)
    backend = TransformersBackend(run_student(run, config), adapter, tokenizer_path=tokenizer,
                                  chat_template=template, device=device, dtype="bfloat16")
    candidates = build_candidates(read_episodes(prepared / "eval_episodes.jsonl", SamplingStats()))
    samples = [s for s in choose_samples(candidates, eval_config, SamplingStats(), backend.count_prompt_tokens)
               if s.teacher.tool_calls][:max_turns]
    tools = [t for t, _ in Counter(s.teacher.tool_calls[0].name for s in samples).most_common(4)]
    score = Scorer(backend)
    ranked: dict[str, Counter] = {"A": Counter(), "B": Counter()}
    mass: dict[str, list[dict[str, float]]] = defaultdict(list)
    for s in samples:
        teacher = s.teacher.tool_calls[0].name
        prompt = backend.render(s.request(eval_config))
        text = prompt + (s.teacher.content + "\n" if s.teacher.content else "")
        for cond, pre in (("A", text), ("B", prompt)):
            logps = dict(zip(tools, score([pre + call_prefix(t) for t in tools], len(pre))))
            ranked[cond][max(logps, key=logps.get) == teacher] += 1
            if cond == "A":
                top = max(logps.values())
                weights = {t: math.exp(v - top) for t, v in logps.items()}
                mass[teacher].append({t: w / sum(weights.values()) for t, w in weights.items()})
    n = len(samples)
    floor = Counter(s.teacher.tool_calls[0].name for s in samples).most_common(1)[0][1] / n
    print(f"{role}: {n} held-out turns with a call; first-ranked tool is the teacher's: "
          f"after its text {ranked['A'][True] / n:.3f}, at the turn's start {ranked['B'][True] / n:.3f}; floor {floor:.3f}")
    print("teacher  n  " + "  ".join(f"{t:>6}" for t in tools))
    for teacher, rows in sorted(mass.items(), key=lambda kv: -len(kv[1])):
        means = [sum(r[t] for r in rows) / len(rows) for t in tools]
        print(f"{teacher:<7} {len(rows):>3}  " + "  ".join(f"{m:6.2f}" for m in means))


def main() -> None:
    """Parse the flags; print the bigram baseline, then probe the model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished run folder")
    parser.add_argument("--role", choices=["base", "tuned"], default="tuned")
    parser.add_argument("--max-turns", type=int, default=None, help="probe only the first N turns (a quick look)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (a GPU when there is one)")
    args = parser.parse_args()
    bigram(args.run / "prepare")
    probe(args.run, args.role, args.max_turns, args.device)


if __name__ == "__main__":
    main()
