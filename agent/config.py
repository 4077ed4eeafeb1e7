"""The one settings object. Read from the environment (prefix SUPPORTBOT_) and `.env`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

# The newest Sonnet in the installed SDK's model list that is not on its deprecation list
# (tests/test_config.py checks both facts against the installed `anthropic`).
DEFAULT_MODEL = "claude-sonnet-5-5"


class ModelPrice(BaseModel):
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes
    cache_read: float


# Defaults at Sonnet-class list prices; set SUPPORTBOT_PRICING to your contract's prices.
DEFAULT_PRICING = {
    DEFAULT_MODEL: ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30),
    "claude-sonnet-4-6": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30),
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10),
}


class Settings(BaseSettings):
    """Everything an operator can configure. Built once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir"
    )
    db_pool_size: int = Field(default=20, ge=1, le=500)

    # Claude. The SDK's own variables are honoured so existing set-ups just work.
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPPORTBOT_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    anthropic_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPPORTBOT_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
    )
    offline: bool = Field(default=False, description="Force the offline model even with a key")
    provider: Literal["anthropic", "bedrock", "vertex"] = "anthropic"
    provider_model: str | None = Field(
        default=None, description="The provider's own id for the model (Bedrock, Vertex)"
    )
    aws_region: str | None = None
    vertex_region: str | None = None
    vertex_project_id: str | None = None
    model: str = DEFAULT_MODEL
    max_tokens: int = Field(default=1024, ge=16, le=64_000)
    max_retries: int = Field(default=2, ge=0, le=10)
    request_timeout: float = Field(default=60.0, gt=0)

    # Cost accounting: per model, dollars per million tokens (JSON in the environment).
    pricing: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICING))

    # Context and caching.
    context_budget_tokens: int = Field(
        default=40_000, ge=1_000, description="Most input tokens one request may carry"
    )
    context_strategy: Literal["window", "summarize"] = "window"
    context_trim_target: float = Field(
        default=0.5,
        ge=0.2,
        le=0.9,
        description="When trimming, cut down to this share of the budget",
    )
    count_tokens_api: bool = Field(
        default=False, description="Count with the Token Counting API (else a local estimate)"
    )
    prompt_caching: bool = True
    tool_result_max_chars: int = Field(default=6_000, ge=200)

    # The agent loop.
    max_tool_iterations: int = Field(default=8, ge=1, le=50)
    max_continuations: int = Field(default=2, ge=0, le=10)
    max_message_chars: int = Field(default=4000, ge=1)
    max_failed_verifications: int = Field(default=3, ge=1)

    # Knowledge base.
    chroma_url: str | None = Field(
        default=None, description="Chroma server URL; default: embedded Chroma in data_dir/chroma"
    )
    kb_collection: str = "kb_chunks"
    kb_chunk_tokens: int = Field(default=200, ge=32, le=256)
    kb_chunk_overlap: int = Field(default=40, ge=0, le=128)
    kb_candidates: int = Field(default=30, ge=1, le=200)
    kb_dense_threshold: float = Field(default=0.35, ge=-1, le=1)
    kb_fusion: Literal["rrf", "convex"] = "convex"
    kb_lexical_weight: float = Field(default=0.3, ge=0, le=1)
    kb_search_results: int = Field(default=4, ge=1, le=20)
    embedding_batch_size: int = Field(default=64, ge=1, le=1024)

    # HTTP API.
    widget_secret: SecretStr | None = Field(
        default=None, description="HMAC secret the shop's site signs customer tokens with"
    )
    widget_token_max_ttl: int = Field(default=3600, ge=60)
    web_widget_key: SecretStr | None = Field(
        default=None, description="Widget key the served chat page uses; created when unset"
    )
    rate_limit_per_key: int = Field(default=120, ge=1, description="Requests per minute per key")
    rate_limit_per_conversation: int = Field(
        default=20, ge=1, description="Customer messages per minute per conversation"
    )
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    max_images: int = Field(default=4, ge=0, le=20, description="Images per customer message")
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Bytes per image")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    api_threads: int = Field(
        default=256, ge=4, le=4096, description="Worker threads for turns' database/tool work"
    )
    api_switch_interval_ms: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="Python's thread switch interval in the server (its default is 5 ms)",
    )

    # Persona.
    company_name: str = "Acme"
    assistant_name: str = "Ava"
    persona: str = "friendly, concise and precise"

    log_level: str = "WARNING"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'supportbot.db'}"

    def uses_claude(self) -> bool:
        """Claude is used when a key, a compatible server or a cloud provider is configured,
        and the offline model is not forced."""
        if self.offline:
            return False
        if self.provider != "anthropic":
            return True
        return self.anthropic_api_key is not None or self.anthropic_base_url is not None


def deprecated_model_notice(model: str) -> str | None:
    """The SDK's end-of-life date for `model`, or None when it is not deprecated."""
    try:
        from anthropic._data import DEPRECATED_MODELS  # private module; may move
    except ImportError:  # pragma: no cover - depends on the installed SDK
        return None
    return DEPRECATED_MODELS.get(model)


def warn_if_deprecated(settings: Settings) -> None:
    if settings.uses_claude() and (eol := deprecated_model_notice(settings.model)):
        log.warning(
            "The configured model %s is deprecated and reaches end of life on %s; "
            "set SUPPORTBOT_MODEL to a current model (default: %s).",
            settings.model,
            eol,
            DEFAULT_MODEL,
        )
