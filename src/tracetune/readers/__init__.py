"""Readers: one module per agent format, all producing ``Session`` values."""

from tracetune.readers.discover import ReadResult, discover, read_file, read_paths

__all__ = ["ReadResult", "discover", "read_file", "read_paths"]
