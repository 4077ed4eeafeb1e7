"""Claude through the official SDK: retries and `retry-after` are the SDK's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from agent.config import Settings
from agent.context import with_cache_breakpoints
from agent.errors import SupportbotError
from agent.models.base import (
    ContextTooLong,
    ModelReply,
    ModelRequest,
    ModelUnavailable,
    TextDelta,
)

log = logging.getLogger(__name__)


# The cloud providers name models their own way; these are the ids we know.
PROVIDER_MODEL_IDS: dict[str, dict[str, str]] = {
    "bedrock": {"claude-sonnet-4-5-20250929": "anthropic.claude-sonnet-4-5-20250929-v1:0"},
    "vertex": {"claude-sonnet-4-5-20250929": "claude-sonnet-4-5@20250929"},
}
EXTRAS = {"bedrock": "boto3", "vertex": "google.auth"}


class ProviderNotConfigured(SupportbotError):
    """The chosen provider lacks a setting or its optional packages."""

    code = "provider_not_configured"


def model_id(settings: Settings) -> str:
    """The model id as the configured provider names it."""
    if settings.provider == "anthropic":
        return settings.model
    if settings.provider_model:
        return settings.provider_model
    known = PROVIDER_MODEL_IDS[settings.provider].get(settings.model)
    if known is None:
        raise ProviderNotConfigured(
            f"Set SUPPORTBOT_PROVIDER_MODEL to {settings.provider}'s id for {settings.model}."
        )
    return known


def make_client(settings: Settings, *, asynchronous: bool = False) -> Any:
    """The SDK client for the configured provider (Anthropic, Amazon Bedrock, Google Vertex).

    The asynchronous one (the HTTP API's turns) sends through aiohttp: at hundreds of calls in
    flight it costs well under half the CPU per call of httpx's pool (bench/README.md)."""
    common: dict[str, Any] = {
        "max_retries": settings.max_retries,
        "timeout": settings.request_timeout,
    }
    if asynchronous:
        common["http_client"] = anthropic.DefaultAioHttpClient()
    if settings.provider == "anthropic":
        key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
        # A compatible server behind ANTHROPIC_BASE_URL may need no key; the SDK insists on one.
        client = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
        return client(api_key=key or "not-needed", base_url=settings.anthropic_base_url, **common)
    module = EXTRAS[settings.provider]
    try:
        __import__(module)
    except ImportError as exc:
        extra = f"supportbot[{settings.provider}]"
        raise ProviderNotConfigured(
            f"The {settings.provider} provider needs its extra: pip install '{extra}'"
        ) from exc
    if settings.provider == "bedrock":
        if not settings.aws_region:
            raise ProviderNotConfigured("Set SUPPORTBOT_AWS_REGION for Bedrock.")
        bedrock = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
        return bedrock(aws_region=settings.aws_region, **common)
    if not (settings.vertex_region and settings.vertex_project_id):
        raise ProviderNotConfigured(
            "Set SUPPORTBOT_VERTEX_REGION and SUPPORTBOT_VERTEX_PROJECT_ID for Vertex."
        )
    vertex = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
    return vertex(region=settings.vertex_region, project_id=settings.vertex_project_id, **common)


class ClaudeModel:
    offline = False

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.name = model_id(settings)
        self.settings = settings
        self.prompt_caching = settings.prompt_caching
        self.client = client or make_client(settings)
        # The asynchronous client belongs to the event loop it was opened on.
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.name,
            "system": request.system,
            "messages": request.messages,
        }
        if request.tools:
            params["tools"] = request.tools
        return params

    def _message_params(self, request: ModelRequest) -> dict[str, Any]:
        params = self._params(request) | {"max_tokens": request.max_tokens}
        return with_cache_breakpoints(params) if self.prompt_caching else params

    def count_tokens(self, request: ModelRequest) -> int:
        """Input tokens of `request`, from the Token Counting API."""
        return int(self.client.messages.count_tokens(**self._params(request)).input_tokens)

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[TextDelta | ModelReply]:
        params = self._message_params(request)
        with _translated_errors():
            if stream:
                with self.client.messages.stream(**params) as events:
                    for text in events.text_stream:
                        yield TextDelta(text)
                    message = events.get_final_message()
            else:
                message = self.client.messages.create(**params)
        yield _reply(message)

    async def respond_async(
        self, request: ModelRequest, *, stream: bool = False
    ) -> AsyncGenerator[TextDelta | ModelReply, None]:
        params = self._message_params(request)
        client = self._async_client()
        with _translated_errors():
            if stream:
                async with client.messages.stream(**params) as events:
                    async for text in events.text_stream:
                        yield TextDelta(text)
                    message = await events.get_final_message()
            else:
                message = await client.messages.create(**params)
        yield _reply(message)

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, make_client(self.settings, asynchronous=True))
        return self._async[1]

    async def aclose(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].close()
        self._async = None


@contextmanager
def _translated_errors() -> Iterator[None]:
    """The SDK's errors (after its retries) as the agent's: the offline model takes over on
    ModelUnavailable; ContextTooLong makes the turn compact its request once."""
    try:
        yield
    except anthropic.BadRequestError as exc:
        if "prompt is too long" in str(exc).lower():
            raise ContextTooLong(str(exc)) from exc
        raise ModelUnavailable(f"Claude answered 400 {_error_type(exc)}") from exc
    except anthropic.APIStatusError as exc:
        error_type = _error_type(exc)
        raise ModelUnavailable(f"Claude answered {exc.status_code} {error_type}") from exc
    except anthropic.APIConnectionError as exc:  # includes timeouts
        raise ModelUnavailable(f"Claude unreachable: {exc}") from exc


def _reply(message: Any) -> ModelReply:
    return ModelReply(
        content=[block.model_dump(mode="json", exclude_none=True) for block in message.content],
        stop_reason=message.stop_reason or "end_turn",
        model=message.model,
        usage={k: v for k, v in message.usage.model_dump().items() if isinstance(v, int)},
    )


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "error")) if isinstance(error, dict) else "error"
