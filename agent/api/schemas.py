"""Request and response models of the HTTP API (never the database tables)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.features.transcript import CitationView, ToolCallView, TranscriptEntry
from agent.features.usage import UsageTotals
from agent.store.tables import ActionStatus, ConversationState, TicketStatus, UtcTime

# Strings that reach the database hold no NUL: PostgreSQL text cannot, and no id of ours has one.
NO_NUL = r"^[^\x00]*$"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_nul(v) for v in value)


class ConversationCreate(BaseModel):
    customer_id: str | None = Field(
        default=None, max_length=64, pattern=NO_NUL, description="Backend/admin keys only"
    )
    customer_email: str | None = Field(
        default=None, max_length=320, pattern=NO_NUL, description="Backend/admin keys only"
    )
    customer_token: str | None = Field(
        default=None,
        max_length=4096,
        description="Widget: a short-lived token signed by the shop's site",
    )


class CustomerOut(BaseModel):
    name: str


class ConversationOut(BaseModel):
    id: str
    state: ConversationState
    customer: CustomerOut | None = None
    conversation_token: str | None = Field(
        default=None,
        description="Widget keys only, returned once: send it as X-Conversation-Token",
    )


class ImageIn(BaseModel):
    data: str = Field(description="The image, base64-encoded (JPEG, PNG, WebP or GIF)")
    media_type: str | None = Field(default=None, description="Checked against the bytes")
    name: str = Field(default="image", max_length=200)


# A message needs words or a photo: a text of only white space without images is a 422 ("The
# message is empty."). The same rule for JSON and multipart bodies.
NOT_EMPTY: list[dict[str, Any]] = [
    {"required": ["text"], "properties": {"text": {"pattern": "\\S"}}},
    {"required": ["images"], "properties": {"images": {"minItems": 1}}},
]
NOT_EMPTY_RULE = (
    "`text` may be empty (or left out) only when `images` has at least one photo; otherwise "
    'the message is refused with 422 "The message is empty."'
)


class MessageCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": NOT_EMPTY, "description": NOT_EMPTY_RULE}  # type: ignore[dict-item]
    )

    text: str = Field(default="", description="The customer's message (may be empty with images)")
    images: list[ImageIn] = Field(default_factory=list, description="Photos, e.g. of damage")


class PendingActionOut(BaseModel):
    """A change the assistant proposed, waiting for the customer's confirmation."""

    id: str
    tool: str
    summary: str = Field(description="What would change: amounts, items, the refund method")
    expires_at: UtcTime


class SettledActionOut(BaseModel):
    """The proposed change a turn settled, and how."""

    id: str
    tool: str
    summary: str
    status: ActionStatus


class ActionOut(SettledActionOut):
    """A proposed or executed order change, as the customer and staff see it."""

    conversation_id: str | None
    created_at: UtcTime
    expires_at: UtcTime
    decided_at: UtcTime | None = None
    proposed_by: str
    decided_by: str | None = None


class StaffActionOut(ActionOut):
    customer_id: str
    arguments: dict[str, Any]
    result: str | None = Field(default=None, description="The tool's result as the model saw it")
    system_reply: str | None = Field(
        default=None,
        description="What the shop's order system answered when it carried the change out "
        "(its refund or return id, the record as it became)",
    )
    discrepancy: str | None = Field(
        default=None,
        description="Where the order system's answer differed from what was confirmed",
    )


class ChangeOut(BaseModel):
    """A store-changing tool, as the desk's change form is built from it."""

    name: str
    title: str  # "Cancel pending order"
    description: str  # the tool's manual (its docstring)
    input_schema: dict[str, Any]  # JSON Schema of its arguments


class StaffActionCreate(BaseModel):
    tool: str = Field(max_length=64, pattern=NO_NUL, description="One of the store-changing tools")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The tool's input")
    conversation_id: str | None = Field(
        default=None,
        max_length=36,
        pattern=NO_NUL,
        description="The conversation it was asked for, if any",
    )

    @field_validator("arguments")
    @classmethod
    def _no_nul(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _has_nul(value):
            raise ValueError("NUL characters are not allowed")
        return value


class TurnOut(BaseModel):
    conversation_id: str
    message_id: int | None
    reply: str
    outcome: str
    degraded: bool
    model: str
    tool_calls: list[ToolCallView]
    citations: list[CitationView]
    usage: dict[str, int]
    state: ConversationState
    pending_action: PendingActionOut | None = Field(
        default=None,
        description="A change waiting for the customer: confirm or decline it at "
        "/v1/conversations/{id}/actions/{action_id}/confirm or /decline",
    )
    action: SettledActionOut | None = Field(
        default=None, description="The proposed change this turn settled (confirmed, ...)"
    )


class TranscriptOut(BaseModel):
    id: str
    state: ConversationState
    customer: CustomerOut | None
    created_at: UtcTime
    messages: list[TranscriptEntry]
    usage: UsageTotals = Field(description="This conversation's model calls, tokens and cost")
    notices: list[NoticeOut] = Field(
        default=[], description="People joining, replying and leaving, oldest first"
    )
    last_event_id: int = Field(
        default=0, description="Follow /v1/conversations/{id}/events from here"
    )


class TicketOut(BaseModel):
    id: int
    conversation_id: str
    reason: str
    summary: str
    status: TicketStatus
    claimed_by: str | None
    created_at: UtcTime
    resolved_at: UtcTime | None
    customer: CustomerOut | None = None
    customer_id: str | None = Field(default=None, description="For order changes from the desk")
    assignee_id: int | None = Field(
        default=None, description="The staff account working it (claimed_by is its name)"
    )
    customer_ended_at: UtcTime | None = Field(
        default=None,
        description="When the customer ended the conversation (replies no longer reach them)",
    )
    channel: str | None = Field(
        default=None,
        description="Where the customer wrote from: widget (the chat), backend, email, cli; "
        "a reply to an email conversation goes out as an email in its thread",
    )


class ReplyCreate(BaseModel):
    text: str


class AssignCreate(BaseModel):
    staff_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="A staff account's id; null: the queue"
    )


class NoteCreate(BaseModel):
    text: str = Field(max_length=4000, pattern=NO_NUL)


class NoteOut(BaseModel):
    id: int
    ticket_id: int
    author: str
    text: str
    created_at: UtcTime


class SavedReplyCreate(BaseModel):
    title: str = Field(max_length=100, pattern=NO_NUL)
    text: str = Field(max_length=4000, pattern=NO_NUL)


class SavedReplyOut(BaseModel):
    id: int
    title: str
    text: str
    created_by: str
    created_at: UtcTime


class SignIn(BaseModel):
    username: str = Field(max_length=64, pattern=NO_NUL)
    password: str = Field(max_length=1024, pattern=NO_NUL)


class StaffOut(BaseModel):
    id: int | None = Field(description="null for an admin API key (no staff account)")
    username: str
    display_name: str


class SignedIn(BaseModel):
    token: str = Field(description="Send it as 'Authorization: Bearer <token>' until it expires")
    expires_at: UtcTime
    staff: StaffOut


class NoticeOut(BaseModel):
    """Something a person on the desk did, as the customer is told it."""

    id: int
    kind: str = Field(description="joined, unassigned, staff_reply or resolved")
    text: str
    created_at: UtcTime


class DeskEventOut(BaseModel):
    id: int
    kind: str = Field(
        description="ticket_opened, customer_message, joined, unassigned, staff_reply, "
        "resolved or note"
    )
    ticket_id: int | None
    conversation_id: str | None
    actor: str
    text: str
    created_at: UtcTime


class DocumentOut(BaseModel):
    id: str
    source: str
    title: str
    format: str
    chunks: int
    url: str | None = None


class IngestOut(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: int
    chunks_embedded: int
    errors: list[str]


class HitOut(BaseModel):
    text: str
    score: float
    source: str
    title: str
    section: str
    url: str | None
    page: int | None


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="e.g. unauthorized, not_found, invalid_request, rate_limited")
    message: str
    details: list[ErrorDetail] | None = Field(default=None, description="Each invalid field")


class ErrorOut(BaseModel):
    """Every error: a code and a message fit to show a user, never a stack trace."""

    error: ErrorBody
