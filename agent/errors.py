"""The few faults the product names. The CLI maps them to exit codes, the API to HTTP statuses."""

from __future__ import annotations


class SupportbotError(Exception):
    """Base class: a fault with a message fit to show a user."""

    code = "error"


class InvalidInput(SupportbotError):
    """The caller sent something we cannot accept (empty, too long, malformed)."""

    code = "invalid_input"


class NotFound(SupportbotError):
    code = "not_found"


class ConversationClosed(SupportbotError):
    code = "conversation_closed"


class HistoryCorrupted(SupportbotError):
    """A stored conversation breaks the Messages API's invariants and cannot be repaired."""

    code = "history_corrupted"


class ImportFailed(SupportbotError):
    code = "import_failed"
