"""Prices per model, cache lifetimes and minimums, providers' model ids and start-up checks."""

from __future__ import annotations

import logging
import sys
import types
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.api.app import create_app
from agent.capabilities import family_name, provider_model_id
from agent.cli import app
from agent.config import DEFAULT_PRICING, Settings
from agent.features.usage import cost, price_for, report
from agent.models.claude import ClaudeModel
from agent.runtime import Runtime, build_runtime
from agent.store.importer import import_path
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, text


def _runtime(make_settings: SettingsFactory, **overrides: Any) -> Runtime:
    runtime = build_runtime(make_settings(**overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    return runtime


def _conversation(runtime: Runtime) -> str:
    return runtime.agent.start_conversation(customer_id=customer_id(runtime, IVAN["email"]))


def test_each_call_is_priced_with_its_own_model() -> None:
    sonnet = price_for("claude-sonnet-5-5", DEFAULT_PRICING)
    assert sonnet is not None and (sonnet.input, sonnet.output, sonnet.cache_read) == (2, 10, 0.1)
    assert (sonnet.cache_write, sonnet.write_1h()) == (2.5, 4.0)
    # Dated and provider ids are priced by their family.
    assert (
        price_for("claude-sonnet-4-5-20250929", DEFAULT_PRICING)
        == DEFAULT_PRICING["claude-sonnet-4-5"]
    )
    assert family_name("anthropic.claude-haiku-4-5-20251001-v1:0") == "claude-haiku-4-5"
    assert family_name("claude-haiku-4-5@20251001") == "claude-haiku-4-5"
    assert price_for("claude-opus-5-5", DEFAULT_PRICING).output == 20  # type: ignore[union-attr]
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 1_000_000,
        "cache_creation_input_tokens": 2_000_000,
        "cache_creation_1h_input_tokens": 1_000_000,
        "cache_read_input_tokens": 1_000_000,
    }
    assert cost(usage, sonnet) == pytest.approx(2 + 10 + 2.5 + 4 + 0.1)
    assert cost(usage, sonnet, batch=True) == pytest.approx(1 + 5 + 2.5 + 4 + 0.1)


def test_a_one_hour_prefix_outlives_a_quiet_ten_minutes(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    def two_turns_ten_minutes_apart(ttl: str) -> dict[str, int]:
        fake.reset()
        runtime = _runtime(make_settings, cache_ttl=ttl)
        conversation = _conversation(runtime)
        fake.enqueue(text("Hello!"), text("Still here."))
        runtime.agent.ask(conversation, "Hi")
        fake.advance(600)
        runtime.agent.ask(conversation, "Are you there?")
        return fake.usages[-1]

    five = two_turns_ten_minutes_apart("5m")
    assert five["cache_read_input_tokens"] == 0  # the 5-minute entry expired
    hour = two_turns_ten_minutes_apart("1h")
    assert hour["cache_read_input_tokens"] > 1000  # tools + system prompt still cached
    body = fake.bodies[-1]
    assert body["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


def test_one_hour_cache_writes_are_recorded_and_priced_apart(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings, cache_ttl="1h")
    fake.enqueue(text("Hello!"))
    runtime.agent.ask(_conversation(runtime), "Hi")
    written = fake.usages[0]["cache_creation"]["ephemeral_1h_input_tokens"]
    assert written > 0
    rows, overall = report(runtime.engine, runtime.settings.pricing, by="model")
    assert [r.key for r in rows] == ["claude-sonnet-5-5"]
    five_minute = fake.usages[0]["cache_creation_input_tokens"] - written
    price = DEFAULT_PRICING["claude-sonnet-5-5"]
    expected = (
        fake.usages[0]["input_tokens"] * price.input
        + fake.usages[0]["output_tokens"] * price.output
        + written * price.write_1h()
        + five_minute * price.cache_write
    ) / 1e6
    assert overall.cost_usd == pytest.approx(expected)


def test_no_breakpoint_below_the_models_minimum_cacheable_length(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    # Haiku 4.5 caches prompts of 4,096 tokens or more: the tools and system prompt are
    # shorter, so a breakpoint there would save nothing and is not sent.
    runtime = _runtime(make_settings, model="claude-haiku-4-5")
    fake.enqueue(text("Hello!"))
    runtime.agent.ask(_conversation(runtime), "Hi")
    body = fake.bodies[0]
    assert isinstance(body["system"], str) and "cache_control" not in body["tools"][-1]
    assert fake.usages[0]["cache_creation_input_tokens"] == 0
    # Sonnet 5.5 caches from 512 tokens: the same prefix is a breakpoint there.
    runtime = _runtime(make_settings)
    fake.enqueue(text("Hello!"))
    runtime.agent.ask(_conversation(runtime), "Hi")
    assert fake.bodies[1]["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_summaries_can_run_on_a_cheaper_model(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(
        make_settings,
        context_strategy="summarize",
        context_budget_tokens=3_000,
        summary_model="claude-haiku-4-5",
        thinking="adaptive",
    )
    conversation = _conversation(runtime)

    def answer(body: dict[str, Any]) -> Any:
        if body["model"] == "claude-haiku-4-5":
            return text("The customer asked about orders several times.")
        return text("Noted. " + "detail " * 60)

    fake.default = answer
    for turn in range(12):
        runtime.agent.ask(conversation, f"Question {turn}: " + "words " * 40)
    summaries = [b for b in fake.bodies if b["model"] == "claude-haiku-4-5"]
    assert summaries, "the budget forced at least one summary"
    assert all("thinking" not in b and "output_config" not in b for b in summaries)
    assert fake.rejected == []
    rows, _ = report(runtime.engine, runtime.settings.pricing, by="model")
    assert {r.key for r in rows} == {"claude-sonnet-5-5"}  # the summary's usage rides along


def test_current_models_have_provider_ids() -> None:
    assert provider_model_id("claude-sonnet-5-5", "bedrock") == "anthropic.claude-sonnet-5-5"
    assert provider_model_id("claude-sonnet-5-5", "vertex") == "claude-sonnet-5-5"
    assert provider_model_id("claude-haiku-4-5", "vertex") == "claude-haiku-4-5@20251001"
    assert provider_model_id("claude-next-9", "bedrock") is None


@pytest.fixture
def cloud_sdks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """boto3 and google.auth as installed, with whatever credentials the test sets."""
    found: dict[str, Any] = {"aws": None, "google": None}
    boto3 = types.ModuleType("boto3")
    boto3.Session = lambda: types.SimpleNamespace(get_credentials=lambda: found["aws"])  # type: ignore[attr-defined]
    google = types.ModuleType("google")
    auth = types.ModuleType("google.auth")
    exceptions = types.ModuleType("google.auth.exceptions")

    class DefaultCredentialsError(Exception):
        pass

    def default(scopes: Any = None) -> Any:
        if found["google"] is None:
            raise DefaultCredentialsError("no credentials")
        return found["google"], "shop"

    exceptions.DefaultCredentialsError = DefaultCredentialsError  # type: ignore[attr-defined]
    auth.default = default  # type: ignore[attr-defined]
    auth.exceptions = exceptions  # type: ignore[attr-defined]
    google.auth = auth  # type: ignore[attr-defined]
    for name, module in (("boto3", boto3), ("google", google), ("google.auth", auth),
                         ("google.auth.exceptions", exceptions)):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)
    return found


def test_the_default_model_needs_no_hand_set_provider_id(cloud_sdks: dict[str, Any]) -> None:
    model = ClaudeModel(Settings(provider="bedrock", aws_region="eu-west-1"))
    assert model.name == "anthropic.claude-sonnet-5-5"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUPPORTBOT_PROVIDER": "bedrock"}, "Set SUPPORTBOT_AWS_REGION for Bedrock."),
        (
            {"SUPPORTBOT_PROVIDER": "bedrock", "SUPPORTBOT_AWS_REGION": "eu-west-1"},
            "No AWS credentials found for Bedrock",
        ),
        (
            {"SUPPORTBOT_PROVIDER": "vertex", "SUPPORTBOT_VERTEX_REGION": "us-east5",
             "SUPPORTBOT_VERTEX_PROJECT_ID": "shop"},
            "No Google credentials found for Vertex",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["serve"], ["ask", "hi"]])
def test_a_misconfigured_cloud_provider_is_reported_at_start_up(
    cloud_sdks: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    env: dict[str, str],
    message: str,
    command: list[str],
) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: {message}")


def test_readiness_warns_about_a_retired_model(make_settings: SettingsFactory) -> None:
    runtime = build_runtime(make_settings(model="claude-sonnet-4-5-20250929"))
    with TestClient(create_app(runtime.settings, runtime)) as client:
        ready = client.get("/readyz")
    model = ready.json()["checks"]["model"]
    assert ready.status_code == 200  # the offline model still answers
    assert model["retired"] is True and "retired on 2026-11-30" in model["warning"]


def test_a_retired_model_is_answered_by_the_offline_model(
    make_settings: SettingsFactory, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    # A shop that has not changed SUPPORTBOT_MODEL since Sonnet 4.5's retirement: the API
    # answers its requests 404, and customers still get answers, labelled offline.
    runtime = _runtime(make_settings, model="claude-sonnet-4-5-20250929")
    with caplog.at_level(logging.WARNING):
        result = runtime.agent.ask(_conversation(runtime), "Where is my order?")
    assert result.degraded and "Offline mode" in result.reply
    assert [r.path for r in fake.requests] == ["/v1/messages"]  # a 404 is not retried
    assert "404" in caplog.text
