"""Claude through the official SDK: retries and `retry-after` are the SDK's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic

from agent import capabilities
from agent.config import Settings
from agent.errors import SupportbotError
from agent.models import messages_calls, thinking
from agent.models.base import (
    ContextTooLong,
    ImageRejected,
    ModelReply,
    ModelRequest,
    ModelUnavailable,
    Piece,
    ProgressDelta,
    TextDelta,
    Working,
)
from agent.models.caching import with_cache_breakpoints

log = logging.getLogger(__name__)

EXTRAS = {"bedrock": "boto3", "vertex": "google.auth"}


class ProviderNotConfigured(SupportbotError):
    """The chosen provider lacks a setting, a credential or its optional packages."""

    code = "provider_not_configured"


def model_id(settings: Settings) -> str:
    """The model id as the configured provider names it."""
    if settings.provider == "anthropic":
        return settings.model
    if settings.provider_model:
        return settings.provider_model
    known = capabilities.provider_model_id(settings.model, settings.provider)
    if known is None:
        raise ProviderNotConfigured(
            f"Set SUPPORTBOT_PROVIDER_MODEL to {settings.provider}'s id for {settings.model}."
        )
    return known


def check_provider(settings: Settings) -> None:
    """Raise ProviderNotConfigured for what would otherwise fail on the first customer's turn:
    a missing model id, region, optional package or cloud credential (checked at start-up by
    `serve`, `ask` and `chat`)."""
    if not settings.uses_claude() or settings.provider == "anthropic":
        return
    model_id(settings)
    make_client(settings)  # region and extra
    if settings.provider == "bedrock":
        import boto3

        if boto3.Session().get_credentials() is None:
            raise ProviderNotConfigured(
                "No AWS credentials found for Bedrock (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE or an instance role)."
            )
        return
    import google.auth
    import google.auth.exceptions

    try:
        google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except google.auth.exceptions.DefaultCredentialsError as exc:
        raise ProviderNotConfigured(
            "No Google credentials found for Vertex (GOOGLE_APPLICATION_CREDENTIALS or "
            "`gcloud auth application-default login`)."
        ) from exc


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
        self.family = capabilities.family(self.name)
        # What every request carries besides its content, fixed by the settings and the
        # model's family: for customer turns, and for side requests (summaries).
        self._shape = {aux: self._shape_for(aux) for aux in (False, True)}
        # The asynchronous client belongs to the event loop it was opened on.
        self._async: tuple[asyncio.AbstractEventLoop, Any] | None = None

    def _shape_for(self, auxiliary: bool) -> dict[str, Any]:
        """Thinking and effort as far as the model's family allows
        (agent/capabilities.py): side requests get the least thinking, at low effort.
        No forced tool choice, sampling parameters or prefill are ever sent."""
        shape: dict[str, Any] = {}
        mode = "between_tools" if auxiliary else self.settings.thinking
        think, beta = capabilities.thinking_param(self.name, mode, self.settings.thinking_display)
        if think is not None:
            shape["thinking"] = think
        effort = capabilities.effort_param(
            self.name, "low" if auxiliary else self.settings.effort, think
        )
        if effort is not None:
            shape["output_config"] = {"effort": effort}
        if beta:
            shape["extra_headers"] = {"anthropic-beta": beta}
        return shape

    def _params(self, request: ModelRequest) -> tuple[dict[str, Any], Callable[[], str]]:
        """(request parameters valid for this model, digest of the request's prefix). Stored
        thinking blocks go back only where this model may read them."""
        messages, prefix = thinking.for_request(
            request.system, request.tools, request.messages, self.name
        )
        params: dict[str, Any] = {
            "model": self.name,
            "system": request.system,
            "messages": messages,
        }
        if request.tools:
            params["tools"] = request.tools
        return params | self._shape[request.auxiliary], prefix

    def _message_params(self, request: ModelRequest) -> tuple[dict[str, Any], Callable[[], str]]:
        params, prefix = self._params(request)
        params["max_tokens"] = min(request.max_tokens, self.family.max_output_tokens)
        if self.prompt_caching:
            params = with_cache_breakpoints(
                params, ttl=self.settings.cache_ttl, min_tokens=self.family.min_cache_tokens
            )
        return params, prefix

    def count_tokens(self, request: ModelRequest) -> int:
        """Input tokens of `request`, from the Token Counting API."""
        params, _ = self._params(request)
        return int(self.client.messages.count_tokens(**params).input_tokens)

    def respond(
        self, request: ModelRequest, *, stream: bool = False
    ) -> Iterator[Piece | ModelReply]:
        params, prefix = self._message_params(request)
        message: anthropic.types.Message
        with _translated_errors():
            if stream:
                with messages_calls.stream(self.client, params) as events:
                    shown = _Shown(self.settings)
                    for event in events:
                        yield from shown.pieces(event)
                    message = events.get_final_message()
            else:
                message = messages_calls.create(self.client, params)
        yield _reply(message, prefix)

    async def respond_async(
        self, request: ModelRequest, *, stream: bool = False
    ) -> AsyncGenerator[Piece | ModelReply, None]:
        params, prefix = self._message_params(request)
        client = self._async_client()
        message: anthropic.types.Message
        with _translated_errors():
            if stream:
                async with messages_calls.stream_async(client, params) as events:
                    shown = _Shown(self.settings)
                    async for event in events:
                        for piece in shown.pieces(event):
                            yield piece
                    message = await events.get_final_message()
            else:
                message = await messages_calls.create_async(client, params)
        yield _reply(message, prefix)

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, make_client(self.settings, asynchronous=True))
        return self._async[1]

    async def aclose(self) -> None:
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].close()
        self._async = None


class _Shown:
    """What of a streamed response the customer sees: its text; that the model is working
    (each thinking block that opens); and the text of thinking blocks only where it is a
    progress update (`between_tools`, or the `updates` display) or where the operator chose
    to show summarized reasoning. Private reasoning is never shown otherwise."""

    def __init__(self, settings: Settings) -> None:
        self.readable = (
            settings.thinking == "between_tools"
            or settings.thinking_display == "updates"
            or (settings.thinking_display == "summarized" and settings.show_thinking)
        )

    def pieces(self, event: Any) -> Iterator[Piece]:
        kind = getattr(event, "type", None)
        if kind == "content_block_start" and event.content_block.type in thinking.THINKING_TYPES:
            yield Working()
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                yield TextDelta(delta.text)
            elif delta.type == "thinking_delta" and delta.thinking and self.readable:
                yield ProgressDelta(delta.thinking)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """The SDK's errors (after its retries) as the agent's: the offline model takes over on
    ModelUnavailable; ContextTooLong makes the turn compact its request once."""
    try:
        yield
    except anthropic.BadRequestError as exc:
        if "prompt is too long" in str(exc).lower():
            raise ContextTooLong(str(exc)) from exc
        if "image" in _error_message(exc).lower():
            raise ImageRejected(_error_message(exc)) from exc
        raise ModelUnavailable(f"Claude answered 400 {_error_type(exc)}") from exc
    except anthropic.APIStatusError as exc:
        error_type = _error_type(exc)
        raise ModelUnavailable(f"Claude answered {exc.status_code} {error_type}") from exc
    except anthropic.APIConnectionError as exc:  # includes timeouts
        raise ModelUnavailable(f"Claude unreachable: {exc}") from exc


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str((error or {}).get("message") or exc.message)


def _reply(message: Any, prefix: Callable[[], str]) -> ModelReply:
    content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
    details = getattr(message, "stop_details", None)
    return ModelReply(
        content=thinking.bind(content, message.model, prefix),
        stop_reason=message.stop_reason or "end_turn",
        model=message.model,
        usage=_usage(message.usage),
        stop_details=details.model_dump(mode="json") if details is not None else None,
    )


def _usage(usage: Any) -> dict[str, int]:
    """Token counts by kind; cache writes of an hour's lifetime are counted apart as well
    (`cache_creation_1h_input_tokens`, a part of `cache_creation_input_tokens`)."""
    counts = {k: v for k, v in usage.model_dump().items() if isinstance(v, int)}
    split = getattr(usage, "cache_creation", None)
    if split is not None and split.ephemeral_1h_input_tokens:
        counts["cache_creation_1h_input_tokens"] = int(split.ephemeral_1h_input_tokens)
    return counts


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "error")) if isinstance(error, dict) else "error"
