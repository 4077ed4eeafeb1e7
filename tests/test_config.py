"""Settings and model selection."""

from __future__ import annotations

import logging
import re
import typing
from datetime import date

import anthropic.types
import pytest

from agent.config import (
    DEFAULT_MODEL,
    Settings,
    deprecated_model_notice,
    model_lifecycle,
    warn_if_deprecated,
)


def test_default_model_is_a_current_sonnet_of_the_installed_sdk() -> None:
    known = typing.get_args(typing.get_args(anthropic.types.Model)[0])
    assert DEFAULT_MODEL in known and "sonnet" in DEFAULT_MODEL
    assert deprecated_model_notice(DEFAULT_MODEL) is None


def test_retired_model_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # Sonnet 4.5 left the Claude API on 2026-11-30 (the SDK's deprecation list).
    settings = Settings(model="claude-sonnet-4-5-20250929", anthropic_api_key="k")
    with caplog.at_level(logging.WARNING):
        warn_if_deprecated(settings)
    assert "was retired on 2026-11-30" in caplog.text and "offline model" in caplog.text


def test_deprecated_but_not_yet_retired_model() -> None:
    # The SDK's list names Sonnet 4.5 until its retirement ("November 30th, 2026"); SDKs
    # released after it drop the model, and the capability table still knows the date.
    life = model_lifecycle("claude-sonnet-4-5-20250929", today=date(2026, 11, 1))
    assert life["retires"] == "2026-11-30" and life["retired"] is False
    assert re.fullmatch(r"November 30(th)?, 2026", life["deprecated"])
    assert model_lifecycle("claude-sonnet-4-5-20250929", today=date(2026, 12, 1))["retired"]
    assert model_lifecycle(DEFAULT_MODEL)["retired"] is False


def test_environment_configures_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_COMPANY_NAME", "Globex")
    monkeypatch.setenv("SUPPORTBOT_MAX_TOKENS", "2048")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    settings = Settings()
    assert settings.company_name == "Globex" and settings.max_tokens == 2048
    assert settings.uses_claude() and settings.resolved_database_url().endswith("supportbot.db")
    monkeypatch.setenv("SUPPORTBOT_OFFLINE", "true")
    assert not Settings().uses_claude()


def test_without_a_key_the_product_is_offline() -> None:
    assert Settings().uses_claude() is False


def test_worker_threads_follow_the_database_pool_unless_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each thread's database work holds one pooled connection (pool size, as many again on
    # overflow): by default a process runs as many threads as the pool has connections.
    assert Settings(db_pool_size=20).worker_threads == 40
    monkeypatch.setenv("SUPPORTBOT_DB_POOL_SIZE", "5")
    assert Settings().worker_threads == 10
    monkeypatch.setenv("SUPPORTBOT_API_THREADS", "64")
    assert Settings().worker_threads == 64
    monkeypatch.setenv("SUPPORTBOT_API_THREADS", "2")
    with pytest.raises(ValueError, match="api_threads"):
        Settings()
