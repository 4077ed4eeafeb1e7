"""The one settings object. Read from the environment (prefix SUPPORTBOT_) and `.env`."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.capabilities import FAMILIES, Effort, ThinkingDisplay, ThinkingMode, retirement

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
    cache_write_1h: float | None = None  # 1-hour cache writes; default: twice the input price
    batch_discount: float = Field(default=0.5, ge=0, le=1)  # share off with Message Batches

    def write_1h(self) -> float:
        return self.cache_write_1h if self.cache_write_1h is not None else 2 * self.input


# List prices of the model families we know (agent/capabilities.py); set
# SUPPORTBOT_PRICING to your contract's prices. Keys are family ids: a dated or provider id
# (claude-sonnet-4-5-20250929, anthropic.claude-sonnet-5-5) is priced by its family.
DEFAULT_PRICING = {
    name: ModelPrice(
        input=f.price.input,
        output=f.price.output,
        cache_write=f.price.cache_write,
        cache_write_1h=f.price.cache_write_1h,
        cache_read=f.price.cache_read,
        batch_discount=f.price.batch_discount,
    )
    for name, f in FAMILIES.items()
}


class Settings(BaseSettings):
    """Everything an operator can configure. Built once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="SUPPORTBOT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path("data")
    # The shop's own order system (README, "Connecting the shop's order system"): a connector
    # file, or one τ²-retail MCP server (its Streamable HTTP URL, or the command that starts it
    # over stdio). Neither: the built-in store.
    connector_file: Path | None = None
    tau2_server: str | None = None
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
    max_tokens: int = Field(
        default=4096,
        ge=16,
        le=128_000,
        description="max_tokens per model call; it covers thinking as well as the reply",
    )
    thinking: ThinkingMode = Field(
        default="between_tools",
        description="adaptive, or between_tools: no up-front thinking (lowest latency)",
    )
    thinking_display: ThinkingDisplay = Field(
        default="omitted",
        description="What adaptive thinking returns: omitted, updates (progress notes), summarized",
    )
    show_thinking: bool = Field(
        default=False,
        description="Stream summarized reasoning to the customer (progress updates always show)",
    )
    effort: Effort = Field(default="low", description="output_config.effort for customer turns")
    triage_effort: Effort = Field(default="low", description="output_config.effort for triage")
    summary_model: str | None = Field(
        default=None, description="Model for context summaries (default: the turn's model)"
    )
    cache_ttl: Literal["5m", "1h"] = Field(
        default="5m", description="Cache lifetime of the stable prefix (tools + system prompt)"
    )
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
    max_failed_verifications: int = Field(
        default=3, ge=1, description="Failed identity checks allowed per conversation"
    )
    verify_failures_per_customer: int = Field(
        default=5,
        ge=1,
        description="Failed identity checks naming one account (any conversation, any worker) "
        "before it is locked for verification",
    )
    verify_failures_per_client: int = Field(
        default=10,
        ge=1,
        description="Failed identity checks from one client address before it is locked out",
    )
    verify_lockout_minutes: float = Field(
        default=30, gt=0, le=7 * 24 * 60, description="How long failures count, and a lock lasts"
    )
    verify_backoff_seconds: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="Wait after a second failure on an account or client, doubling with each "
        "further one",
    )
    action_expiry_minutes: float = Field(
        default=15,
        gt=0,
        le=7 * 24 * 60,
        description="How long a proposed order change waits for the customer's confirmation",
    )
    turn_wait_seconds: float = Field(
        default=15.0,
        ge=0,
        le=300,
        description="How long a message waits for the conversation's running turn (then 409)",
    )
    # One turn per conversation at a time (agent/adapters/leases.py): a running turn holds its
    # conversation with a short lease that its process renews while the turn runs.
    turn_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=3600,
        description="How long a turn's hold on its conversation lasts unrenewed: the longest a "
        "server that died mid-turn blocks the conversation (on the same host, not at all)",
    )
    turn_renew_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How often each process renews its running turns' holds "
        "(default: a third of the lease)",
    )
    turn_stall_seconds: float | None = Field(
        default=None,
        gt=0,
        description="A turn that makes no progress this long is no longer renewed (default: "
        "600 s, or the longest model call with its retries plus 15 s when that is longer)",
    )

    # Knowledge base.
    chroma_url: str | None = Field(
        default=None, description="Chroma server URL; default: embedded Chroma in data_dir/chroma"
    )
    kb_collection: str = "kb_chunks"
    kb_chunk_tokens: int = Field(default=128, ge=32, le=256)
    kb_chunk_overlap: int = Field(default=24, ge=0, le=128)
    kb_candidates: int = Field(default=30, ge=1, le=200)
    kb_dense_threshold: float = Field(default=0.35, ge=-1, le=1)
    kb_fusion: Literal["rrf", "convex"] = "convex"
    kb_lexical_weight: float = Field(default=0.3, ge=0, le=1)
    kb_lexical_window: float | None = Field(
        default=0.1,
        ge=0,
        le=2,
        description="BM25 reorders only passages within this cosine of the best one (unset: "
        "BM25 counts for every candidate)",
    )
    kb_search_results: int = Field(default=4, ge=1, le=20)
    kb_passage_tokens: int = Field(
        default=320,
        ge=0,
        le=2000,
        description="A passage found in a section of at most this many tokens is shown with the "
        "whole section (0: the chunk alone)",
    )
    embedding_batch_size: int = Field(default=64, ge=1, le=1024)

    # HTTP API.
    widget_secret: SecretStr | None = Field(
        default=None, description="HMAC secret the shop's site signs customer tokens with"
    )
    widget_token_max_ttl: int = Field(default=3600, ge=60)
    web_widget_key: SecretStr | None = Field(
        default=None, description="Widget key the served chat page uses; created when unset"
    )
    encoder_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Threads of the query encoder in the server (ingest uses every core)",
    )
    encoder: Literal["onnx", "onnx-int8", "torch"] = Field(
        default="onnx",
        description="onnx: the embedding model exported once to ONNX Runtime (no PyTorch in the "
        "process); onnx-int8: the same with int8 feed-forward weights; torch: "
        "sentence-transformers on PyTorch",
    )
    encoder_cache: Path | None = Field(
        default=None,
        description="Where the ONNX export is kept; default ~/.cache/supportbot/encoder "
        "(data_dir/encoder when that cannot be written)",
    )
    encoder_process: bool = Field(
        default=True,
        description="serve runs the query encoder (onnx, onnx-int8) in one process of its own "
        "that its workers share, instead of one model per worker (~130 MiB each)",
    )
    encoder_socket: str | None = Field(
        default=None,
        description="Set by serve for its workers: the encoder process's socket (not a setting "
        "to make by hand)",
    )
    rate_limit_per_key: int = Field(
        default=120, ge=1, description="Requests per minute per backend or admin key"
    )
    rate_limit_per_staff: int = Field(
        default=600,
        ge=1,
        description="Requests per minute per staff sign-in on the desk (each live event "
        "refreshes a few panels)",
    )
    rate_limit_per_widget_key: int = Field(
        default=3000,
        ge=1,
        description="Requests per minute per widget key: every visitor of the site together",
    )
    rate_limit_per_client: int = Field(
        default=60,
        ge=1,
        description="Requests per minute per client address with a widget key (one visitor)",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks of reverse proxies whose X-Forwarded-For is believed "
        "(comma-separated, e.g. 10.0.0.0/8,127.0.0.1)",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[str]:
        items = value.split(",") if isinstance(value, str) else list(value or [])
        networks = []
        for item in (str(i).strip() for i in items):
            if item:
                try:
                    networks.append(str(ip_network(item, strict=False)))
                except ValueError as exc:
                    raise ValueError(f"{item!r} is not an IP address or network") from exc
        return networks

    rate_limit_per_conversation: int = Field(
        default=20, ge=1, description="Customer messages per minute per conversation"
    )
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)
    max_images: int = Field(default=4, ge=0, le=20, description="Images per customer message")
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Bytes per image")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    api_threads: int | None = Field(
        default=None,
        ge=4,
        le=4096,
        description="Worker threads for turns' database/tool work; default: the database "
        "pool's connections (2 x db_pool_size)",
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

    # Outcomes (agent/features/outcomes.py): a conversation the customer did not come back to
    # within this many hours after the bot's last answer counts as resolved by the bot.
    resolution_window_hours: float = Field(default=24.0, gt=0, le=24 * 90)

    # The desk (agent/features/desk.py): how long a staff sign-in lasts, and the live feeds
    # (server-sent events) of the desk and of a customer's page: how often each checks the
    # database for new events, and how long one stream lasts before the browser reconnects
    # (with Last-Event-ID, losing nothing).
    staff_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    event_poll_seconds: float = Field(default=1.0, ge=0.05, le=30)
    event_stream_seconds: float = Field(default=300.0, ge=0.1, le=3600)

    # Email (agent/email, README "Email"): the shop's mailbox read over IMAP, or mail received
    # over LMTP/SMTP on a port of our own; replies sent over SMTP from the shop's address.
    email_address: str | None = Field(
        default=None, description="The shop's support address: replies come from it"
    )
    email_from_name: str | None = Field(
        default=None, description="The name replies come from (default: '<company> Support')"
    )
    email_inbound: Literal["imap", "lmtp", "smtp"] = Field(
        default="imap",
        description="imap: read the mailbox; lmtp or smtp: receive mail on email_listen_port",
    )
    email_imap_host: str | None = None
    email_imap_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 993 with tls=ssl, else 143"
    )
    email_imap_user: str | None = None
    email_imap_password: SecretStr | None = None
    email_imap_tls: Literal["ssl", "starttls", "none"] = "ssl"
    email_imap_folder: str = "INBOX"
    email_imap_handled: Literal["flag", "move"] = Field(
        default="flag",
        description="What happens to a message once it is stored: flag (keyword "
        "$SupportbotHandled, and \\Seen) or move (to email_imap_handled_folder)",
    )
    email_imap_handled_folder: str = "Supportbot"
    email_poll_seconds: float = Field(
        default=60.0, gt=0, le=3600,
        description="How often the mailbox is checked without IDLE, and how long one IDLE lasts",
    )  # fmt: skip
    email_listen_host: str = "127.0.0.1"
    email_listen_port: int = Field(default=8025, ge=0, le=65535)
    email_smtp_host: str | None = None
    email_smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 465 with tls=ssl, else 587"
    )
    email_smtp_user: str | None = None
    email_smtp_password: SecretStr | None = None
    email_smtp_tls: Literal["ssl", "starttls", "none"] = "starttls"
    email_tls_ca_file: Path | None = Field(
        default=None, description="CA certificates for a mail server the system's do not cover"
    )
    email_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    email_trust_dkim: bool = Field(
        default=False,
        description="A message with a valid DKIM signature of its From domain binds the "
        "conversation to the customer with that email",
    )
    email_link_secret: SecretStr | None = Field(
        default=None, description="HMAC secret of one-time confirmation links (unset: no links)"
    )
    email_link_base_url: str | None = Field(
        default=None, description="Public URL of `serve`, for confirmation links"
    )
    email_action_expiry_minutes: float = Field(
        default=24 * 60, gt=0, le=30 * 24 * 60,
        description="How long a change proposed by email waits for its confirmation",
    )  # fmt: skip
    email_rate_limit_per_sender: int = Field(
        default=20, ge=1, description="Messages per hour one sender address gets answers to"
    )
    email_max_message_bytes: int = Field(default=30 * 1024 * 1024, ge=64 * 1024)
    email_retry_seconds: float = Field(
        default=30.0, gt=0, le=3600,
        description="First wait before a message or reply that failed is tried again (doubling, "
        "at most an hour)",
    )  # fmt: skip

    def email_imap(self) -> tuple[str, int] | None:
        if not self.email_imap_host:
            return None
        default = 993 if self.email_imap_tls == "ssl" else 143
        return self.email_imap_host, self.email_imap_port or default

    def email_smtp(self) -> tuple[str, int] | None:
        if not self.email_smtp_host:
            return None
        default = 465 if self.email_smtp_tls == "ssl" else 587
        return self.email_smtp_host, self.email_smtp_port or default

    @model_validator(mode="after")
    def _renewed_in_time(self) -> Settings:
        if self.turn_renew() > self.turn_lease_seconds / 2:
            raise ValueError(
                f"turn_renew_seconds ({self.turn_renew():g}) must be at most half of "
                f"turn_lease_seconds ({self.turn_lease_seconds:g}): a hold must survive a "
                "late renewal"
            )
        return self

    def turn_renew(self) -> float:
        """Seconds between renewals of a running turn's hold."""
        return self.turn_renew_seconds or self.turn_lease_seconds / 3

    def turn_stall(self) -> float:
        """Seconds a turn may make no progress (no write) before its hold is let go."""
        longest_call = self.request_timeout * (self.max_retries + 1) + 15
        return self.turn_stall_seconds or max(600.0, longest_call)

    @property
    def worker_threads(self) -> int:
        """Worker threads per process (`api_threads`). By default as many as the database pool
        has connections (`db_pool_size` and as many again on overflow): each thread's work holds
        one, so more threads would only queue on the pool, all of them runnable and contending
        for the interpreter lock with the event loop (bench/README.md, "Threads")."""
        return self.api_threads or 2 * self.db_pool_size

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

    # Monitoring (agent/observability). Traces follow the standard OTEL_* variables only.
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per line, with request/conversation ids"
    )
    log_customer_data: bool = Field(
        default=False,
        description="Debugging only: let customers' words and identity facts into the logs",
    )
    metrics_require_key: bool = Field(
        default=False, description="GET /metrics only with an admin key (Bearer)"
    )


def deprecated_model_notice(model: str) -> str | None:
    """The SDK's end-of-life date for `model`, or None when it is not deprecated."""
    try:
        from anthropic._data import DEPRECATED_MODELS  # private module; may move
    except ImportError:  # pragma: no cover - depends on the installed SDK
        return None
    return DEPRECATED_MODELS.get(model)


def model_lifecycle(model: str, today: date | None = None) -> dict[str, Any]:
    """{"deprecated": end-of-life text or None, "retired": bool, "retires": ISO date or None}
    for `model`, from the SDK's deprecation list and the capability table (whichever knows:
    SDKs drop a model from the list once it has retired)."""
    notice = deprecated_model_notice(model)
    retires = retirement(model, notice)
    # An SDK released after a retirement drops the model from its list; the table still
    # knows the date, so a retired or retiring model is never reported as current.
    if notice is None and retires is not None:
        notice = f"{retires:%B} {retires.day}, {retires.year}"
    today = today or datetime.now(UTC).date()
    return {
        "deprecated": notice,
        "retires": retires.isoformat() if retires else None,
        "retired": retires is not None and retires <= today,
    }


def warn_if_deprecated(settings: Settings) -> None:
    """A warning at start-up for a model that is deprecated, or already retired (its requests
    fail on the Claude API; turns would be answered by the offline model)."""
    if not settings.uses_claude():
        return
    life = model_lifecycle(settings.model)
    if life["retired"]:
        log.warning(
            "The configured model %s was retired on %s: Claude API requests to it fail and "
            "customers get the offline model. Set SUPPORTBOT_MODEL to a current model "
            "(default: %s).",
            settings.model,
            life["retires"],
            DEFAULT_MODEL,
        )
    elif life["deprecated"]:
        log.warning(
            "The configured model %s is deprecated and reaches end of life on %s; "
            "set SUPPORTBOT_MODEL to a current model (default: %s).",
            settings.model,
            life["deprecated"],
            DEFAULT_MODEL,
        )
