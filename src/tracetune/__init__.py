"""tracetune: teach a small open model to act like your coding agent, from its own session traces."""

__version__ = "0.1.0"
