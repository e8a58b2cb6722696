"""Does the student act like the teacher? Next-action fidelity on held-out sessions, the live agent
loop in a sandbox, optional Inspect benchmarks; base and tuned side by side.
"""
