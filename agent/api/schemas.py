"""Request and response models of the HTTP API (never the database tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from agent.features.transcript import CitationView, ToolCallView, TranscriptEntry
from agent.features.usage import UsageTotals
from agent.store.tables import ActionStatus, ConversationState, TicketStatus


class ConversationCreate(BaseModel):
    customer_id: str | None = Field(default=None, description="Backend/admin keys only")
    customer_email: str | None = Field(default=None, description="Backend/admin keys only")
    customer_token: str | None = Field(
        default=None, description="Widget: a short-lived token signed by the shop's site"
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


class MessageCreate(BaseModel):
    text: str = Field(default="", description="The customer's message (may be empty with images)")
    images: list[ImageIn] = Field(default_factory=list, description="Photos, e.g. of damage")


class PendingActionOut(BaseModel):
    """A change the assistant proposed, waiting for the customer's confirmation."""

    id: str
    tool: str
    summary: str = Field(description="What would change: amounts, items, the refund method")
    expires_at: datetime


class SettledActionOut(BaseModel):
    """The proposed change a turn settled, and how."""

    id: str
    tool: str
    summary: str
    status: ActionStatus


class ActionOut(SettledActionOut):
    """A proposed or executed order change, as the customer and staff see it."""

    conversation_id: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None = None
    proposed_by: str
    decided_by: str | None = None


class StaffActionOut(ActionOut):
    customer_id: str
    arguments: dict[str, Any]
    result: str | None = Field(default=None, description="The tool's result as the model saw it")


class StaffActionCreate(BaseModel):
    tool: str = Field(max_length=64, description="One of the store-changing tools")
    arguments: dict[str, Any] = Field(default_factory=dict)
    conversation_id: str | None = Field(
        default=None, max_length=36, description="The conversation it was asked for, if any"
    )


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
    created_at: datetime
    messages: list[TranscriptEntry]
    usage: UsageTotals = Field(description="This conversation's model calls, tokens and cost")


class TicketOut(BaseModel):
    id: int
    conversation_id: str
    reason: str
    summary: str
    status: TicketStatus
    claimed_by: str | None
    created_at: datetime
    resolved_at: datetime | None
    customer: CustomerOut | None = None
    customer_id: str | None = Field(default=None, description="For order changes from the desk")


class ReplyCreate(BaseModel):
    text: str


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
