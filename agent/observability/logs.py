"""Logs: plain text, or JSON lines that carry the request's and the conversation's ids
(`SUPPORTBOT_LOG_FORMAT=json`). Customers' words and identity facts stay out of both unless
`SUPPORTBOT_LOG_CUSTOMER_DATA=true` (for debugging): values a log call marks with
`customer_data()` print as a placeholder, and every record is scrubbed of email addresses and of
the parameters SQLAlchemy writes into its errors (an insert's values: a message, an email)."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from agent.config import Settings

# Set per HTTP request (agent.observability.http) and per turn (agent.observability.turns);
# worker threads of a turn get them with the rest of the context (anyio copies it).
REQUEST_ID: ContextVar[str | None] = ContextVar("supportbot_request_id", default=None)
CONVERSATION_ID: ContextVar[str | None] = ContextVar("supportbot_conversation_id", default=None)

HIDDEN = "[customer data]"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SQL_PARAMETERS = re.compile(r"^\[parameters: .*$", re.MULTILINE)
# Loggers whose handlers get the format and the scrubbing (uvicorn's own handlers do not
# propagate to the root logger).
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")

_show_customer_data = False


class CustomerData:
    """A log argument that came from a customer (their words, an identity fact) or was written
    about them (a refusal's explanation): printed only with SUPPORTBOT_LOG_CUSTOMER_DATA."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value) if _show_customer_data else HIDDEN

    def __repr__(self) -> str:
        return repr(self.value) if _show_customer_data else HIDDEN


def customer_data(value: Any) -> CustomerData:
    return CustomerData(value)


def scrub(text: str) -> str:
    """`text` without email addresses and SQL parameters (unless customer data may be logged)."""
    if _show_customer_data:
        return text
    return SQL_PARAMETERS.sub("[parameters: hidden]", EMAIL.sub("[email]", text))


class Scrubber(logging.Filter):
    """Scrubs each record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _show_customer_data or record.name == "uvicorn.access":  # its formatter reads args
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's and the
    conversation's ids, the trace's ids when the record was made inside a span, and the
    traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        conversation_id = getattr(record, "conversation_id", None) or CONVERSATION_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if conversation_id:
            entry["conversation_id"] = conversation_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(settings: Settings) -> None:
    """Apply the settings to the process's logging: the format (text or JSON) of the root
    logger's and uvicorn's handlers, and the scrubbing. A process with no handler yet (a
    uvicorn worker process) gets one on stderr at SUPPORTBOT_LOG_LEVEL."""
    global _show_customer_data
    _show_customer_data = settings.log_customer_data
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
        root.setLevel(settings.log_level.upper())
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if settings.log_format == "json":
                handler.setFormatter(JsonFormatter())
            if not any(isinstance(f, Scrubber) for f in handler.filters):
                handler.addFilter(Scrubber())
