"""Message, Episode, Session: the values every stage shares (no I/O here)."""

from tracetune.conversation.types import (
    Episode,
    Message,
    ReadWarning,
    Session,
    SessionStats,
    ToolCall,
    ToolSpec,
)

__all__ = ["Episode", "Message", "ReadWarning", "Session", "SessionStats", "ToolCall", "ToolSpec"]
