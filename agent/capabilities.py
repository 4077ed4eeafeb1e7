"""What each Claude model family accepts, costs and is called: one table, read everywhere.

Every request shape that differs between models (thinking, effort, forced tool use,
structured outputs), every price and every provider id is decided here from the model's
family, never by guessing from a model name elsewhere in the code. Sources: the Claude
platform docs' model pages, the Sonnet 5.5 migration guide, pricing and deprecations pages
(as of 2026-12).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

ThinkingMode = Literal["adaptive", "between_tools"]
ThinkingDisplay = Literal["omitted", "updates", "summarized"]
Effort = Literal["low", "medium", "high", "xhigh", "max"]

# `display: "updates"` (progress updates only, reasoning left empty) is a beta on the
# Messages API; it needs this header.
DISPLAY_UPDATES_BETA = "thinking-display-updates-2026-08-18"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes
    cache_write_1h: float
    cache_read: float
    batch_discount: float = 0.5  # Message Batches bill this share off input and output


@dataclass(frozen=True)
class Family:
    """A model family and what its requests may carry. The defaults are the current
    generation's (Sonnet 5.x, Opus 5.x); older families say where they differ. No family is
    ever sent forced tool choice, sampling parameters or prefill: the current ones reject
    them, and nothing here needs them on the older ones."""

    name: str
    price: Price
    # Thinking types the model accepts; with `thinking_default_on`, a request that leaves
    # the field out runs with adaptive thinking.
    thinking: frozenset[str] = frozenset({"adaptive"})
    thinking_default_on: bool = True
    effort: bool = True  # output_config.effort
    structured_outputs: bool = True  # output_config.format
    structured_outputs_on_bedrock: bool = False
    min_cache_tokens: int = 512  # shorter prefixes are not cached (no error, no saving)
    max_output_tokens: int = 128_000
    bedrock_id: str | None = None
    vertex_id: str | None = None
    # Other families whose thinking blocks this one reads; blocks of any other model are not
    # replayed (the API would drop or reject them).
    reads_thinking_of: frozenset[str] = field(default_factory=frozenset)
    retires: date | None = None  # on the Claude API


# "Claude Sonnet 5.5 reads thinking blocks from Claude Sonnet 5, Claude Opus 4.8, Claude Haiku
# 4.5, and earlier models, but not from Claude Opus 5, Claude Opus 5.5, or any Claude Fable or
# Claude Mythos model" (What's new in Claude Sonnet 5.5).
_SONNET_5_5_READS = frozenset(
    {"claude-sonnet-5", "claude-opus-4-8", "claude-haiku-4-5", "claude-sonnet-4-6",
     "claude-sonnet-4-5"}
)  # fmt: skip
_MANUAL_THINKING = frozenset({"disabled", "enabled"})  # Haiku 4.5, Sonnet 4.5
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family(
            "claude-sonnet-5-5",
            Price(2.0, 10.0, 2.5, 4.0, 0.10),
            thinking=frozenset({"adaptive", "between_tools"}),
            bedrock_id="anthropic.claude-sonnet-5-5",
            vertex_id="claude-sonnet-5-5",
            reads_thinking_of=_SONNET_5_5_READS,
        ),
        Family(
            "claude-sonnet-5",
            Price(2.0, 10.0, 2.5, 4.0, 0.20),
            thinking=frozenset({"adaptive", "disabled"}),
            min_cache_tokens=1024,
            bedrock_id="anthropic.claude-sonnet-5",
            vertex_id="claude-sonnet-5",
        ),
        Family(
            "claude-opus-5-5",
            Price(4.0, 20.0, 5.0, 8.0, 0.20),
            bedrock_id="anthropic.claude-opus-5-5",
            vertex_id="claude-opus-5-5",
            reads_thinking_of=frozenset({"claude-sonnet-5-5"}),
        ),
        Family(
            "claude-opus-5",
            Price(5.0, 25.0, 6.25, 10.0, 0.50),
            thinking=frozenset({"adaptive", "disabled"}),
            bedrock_id="anthropic.claude-opus-5",
            vertex_id="claude-opus-5",
        ),
        Family(
            "claude-sonnet-4-6",
            Price(3.0, 15.0, 3.75, 6.0, 0.30),
            thinking=frozenset({"adaptive", "disabled", "enabled"}),
            thinking_default_on=False,
            structured_outputs_on_bedrock=True,
            min_cache_tokens=1024,
            max_output_tokens=64_000,
            bedrock_id="anthropic.claude-sonnet-4-6",
            vertex_id="claude-sonnet-4-6",
        ),
        Family(
            "claude-haiku-4-5",
            Price(1.0, 5.0, 1.25, 2.0, 0.10),
            thinking=_MANUAL_THINKING,
            thinking_default_on=False,
            effort=False,
            structured_outputs_on_bedrock=True,
            min_cache_tokens=4096,
            max_output_tokens=64_000,
            bedrock_id="anthropic.claude-haiku-4-5-20251001-v1:0",
            vertex_id="claude-haiku-4-5@20251001",
        ),
        Family(
            "claude-sonnet-4-5",
            Price(3.0, 15.0, 3.75, 6.0, 0.30),
            thinking=_MANUAL_THINKING,
            thinking_default_on=False,
            effort=False,
            structured_outputs_on_bedrock=True,
            min_cache_tokens=1024,
            max_output_tokens=64_000,
            bedrock_id="anthropic.claude-sonnet-4-5-20250929-v1:0",
            vertex_id="claude-sonnet-4-5@20250929",
            retires=date(2026, 11, 30),
        ),
    ]
}

# A model this table does not know: thinking and effort left at the model's defaults, which
# every current model accepts. (Its price is never read: usage reports price from the pricing
# setting, where an unknown model shows as unpriced.)
UNKNOWN = Family(
    "unknown",
    FAMILIES["claude-sonnet-5-5"].price,
    thinking=frozenset(),
    effort=False,
    min_cache_tokens=1024,
    max_output_tokens=32_000,
)

_DATE_SUFFIX = re.compile(r"(-\d{8})?(-v\d+(:\d+)?)?$")


def family_name(model: str) -> str:
    """The family id of a model id as any provider spells it: `claude-sonnet-4-5-20250929`,
    `anthropic.claude-sonnet-4-5-20250929-v1:0`, `us.anthropic.claude-...`,
    `claude-sonnet-4-5@20250929` and `claude-sonnet-4-5` are all `claude-sonnet-4-5`."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = name.split("anthropic.", 1)[-1].split("@", 1)[0]
    return _DATE_SUFFIX.sub("", name)


def family(model: str) -> Family:
    return FAMILIES.get(family_name(model), UNKNOWN)


def provider_model_id(model: str, provider: str) -> str | None:
    """The id `provider` (bedrock, vertex) uses for `model`, when this table knows it."""
    fam = FAMILIES.get(family_name(model))
    if fam is None:
        return None
    return fam.bedrock_id if provider == "bedrock" else fam.vertex_id


def thinking_param(
    model: str, mode: ThinkingMode, display: ThinkingDisplay
) -> tuple[dict[str, str] | None, str | None]:
    """(the `thinking` request field, or None to leave it out; a beta header it needs).

    `adaptive` where the model has it, with the display asked for; `between_tools` (least
    up-front thinking) where the model has it, else thinking off where the model can turn it
    off (`disabled`), else the model's default. Models with manual thinking only (Haiku 4.5,
    Sonnet 4.5) run without thinking: a budget per support turn buys latency, not answers."""
    fam = family(model)
    if mode == "between_tools":
        if "between_tools" in fam.thinking:
            return {"type": "between_tools"}, None
        if "disabled" in fam.thinking and fam.thinking_default_on:
            return {"type": "disabled"}, None
        return None, None
    if "adaptive" not in fam.thinking:
        return None, None
    param = {"type": "adaptive", "display": display}
    return param, DISPLAY_UPDATES_BETA if display == "updates" else None


def effort_param(model: str, effort: Effort, thinking: dict[str, str] | None) -> Effort | None:
    """The effort to send, or None where the model has no effort setting. Without up-front
    thinking, Sonnet 5.5 accepts low, medium or high only."""
    if not family(model).effort:
        return None
    between_tools = thinking is not None and thinking.get("type") == "between_tools"
    return "high" if between_tools and effort in ("xhigh", "max") else effort


def structured_outputs(model: str, provider: str) -> bool:
    fam = family(model)
    return fam.structured_outputs_on_bedrock if provider == "bedrock" else fam.structured_outputs


_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)")


def retirement(model: str, sdk_notice: str | None = None) -> date | None:
    """The date the Claude API retires `model`: the SDK's deprecation list first (newer than
    this table when the SDK is upgraded), else this table."""
    if sdk_notice:
        try:
            return datetime.strptime(_ORDINAL.sub(r"\1", sdk_notice), "%B %d, %Y").date()
        except ValueError:
            pass
    return family(model).retires
