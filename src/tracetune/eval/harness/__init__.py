"""Real agent harnesses driving a served student: the pi CLI, and a local ``transformers serve``."""

from tracetune.eval.harness.pi_cli import PiRunResult, find_pi, run_pi_task
from tracetune.eval.harness.serve import TransformersServer, free_port

__all__ = ["PiRunResult", "TransformersServer", "find_pi", "free_port", "run_pi_task"]
