"""The model card: a Markdown card with Hub metadata, filled only from a finished run's artifacts
(config, data stats, redaction report, sweep, eval).
"""
