"""Real agent harnesses driving a served student: the pi CLI (a local ``transformers serve`` is in
``tracetune.engines.serve``)."""

from tracetune.eval.harness.pi_cli import PiRunResult, find_pi, run_pi_task

__all__ = ["PiRunResult", "find_pi", "run_pi_task"]
