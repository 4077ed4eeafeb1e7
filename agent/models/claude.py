"""Claude through the official SDK: retries and `retry-after` are the SDK's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anthropic

from agent.config import Settings
from agent.context import with_cache_breakpoints
from agent.models.base import (
    ContextTooLong,
    ModelReply,
    ModelRequest,
    ModelUnavailable,
    TextDelta,
)

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> anthropic.Anthropic:
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    return anthropic.Anthropic(
        # A compatible server behind ANTHROPIC_BASE_URL may need no key; the SDK insists on one.
        api_key=key or "not-needed",
        base_url=settings.anthropic_base_url,
        max_retries=settings.max_retries,
        timeout=settings.request_timeout,
    )


class ClaudeModel:
    offline = False

    def __init__(self, settings: Settings, client: anthropic.Anthropic | None = None) -> None:
        self.name = settings.model
        self.prompt_caching = settings.prompt_caching
        self._client = client or make_client(settings)

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.name,
            "system": request.system,
            "messages": request.messages,
        }
        if request.tools:
            params["tools"] = request.tools
        return params

    def count_tokens(self, request: ModelRequest) -> int:
        """Input tokens of `request`, from the Token Counting API."""
        return int(self._client.messages.count_tokens(**self._params(request)).input_tokens)

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[TextDelta | ModelReply]:
        params = self._params(request) | {"max_tokens": request.max_tokens}
        if self.prompt_caching:
            params = with_cache_breakpoints(params)
        try:
            if stream:
                with self._client.messages.stream(**params) as events:
                    for text in events.text_stream:
                        yield TextDelta(text)
                    message = events.get_final_message()
            else:
                message = self._client.messages.create(**params)
        except anthropic.BadRequestError as exc:
            if "prompt is too long" in str(exc).lower():
                raise ContextTooLong(str(exc)) from exc
            raise ModelUnavailable(f"Claude answered 400 {_error_type(exc)}") from exc
        except anthropic.APIStatusError as exc:
            error_type = _error_type(exc)
            raise ModelUnavailable(f"Claude answered {exc.status_code} {error_type}") from exc
        except anthropic.APIConnectionError as exc:  # includes timeouts
            raise ModelUnavailable(f"Claude unreachable: {exc}") from exc
        yield ModelReply(
            content=[block.model_dump(mode="json", exclude_none=True) for block in message.content],
            stop_reason=message.stop_reason or "end_turn",
            model=message.model,
            usage={k: v for k, v in message.usage.model_dump().items() if isinstance(v, int)},
        )


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "error")) if isinstance(error, dict) else "error"
