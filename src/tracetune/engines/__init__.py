"""Below the stages: merge an adapter into its base, run and stop processes (process groups,
bubblewrap arguments), start a local ``transformers serve``. ``train``, ``eval``, ``serve`` and
``publish`` import these downward; nothing here imports a stage.
"""
