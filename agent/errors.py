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


class Conflict(SupportbotError):
    """The request clashes with the current state (e.g. a ticket claimed by someone else)."""

    code = "conflict"


class ActionDecided(Conflict):
    """The proposed action was settled already (it executes at most once)."""

    code = "action_decided"

    def __init__(self, message: str, action_id: str) -> None:
        super().__init__(message)
        self.action_id = action_id


class Unauthorized(SupportbotError):
    code = "unauthorized"


class Forbidden(SupportbotError):
    code = "forbidden"


class RateLimited(SupportbotError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TurnInProgress(SupportbotError):
    """Another turn of this conversation is running (one turn per conversation at a time).
    `retry_after`: seconds until its hold lapses unless it is renewed (agent.adapters.leases)."""

    code = "turn_in_progress"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TurnLost(TurnInProgress):
    """This turn's hold lapsed (it stalled, or its process could not renew it) and another
    turn took the conversation over: this one stopped, its message stored."""


class TooLarge(SupportbotError):
    code = "too_large"


class UnsupportedMedia(SupportbotError):
    code = "unsupported_media_type"
