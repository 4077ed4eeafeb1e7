"""Settings and model selection."""

from __future__ import annotations

import logging
import typing

import anthropic.types
import pytest

from agent.config import DEFAULT_MODEL, Settings, deprecated_model_notice, warn_if_deprecated


def test_default_model_is_a_current_sonnet_of_the_installed_sdk() -> None:
    known = typing.get_args(typing.get_args(anthropic.types.Model)[0])
    assert DEFAULT_MODEL in known and "sonnet" in DEFAULT_MODEL
    assert deprecated_model_notice(DEFAULT_MODEL) is None


def test_deprecated_model_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(model="claude-sonnet-4-5-20250929", anthropic_api_key="k")
    with caplog.at_level(logging.WARNING):
        warn_if_deprecated(settings)
    assert "deprecated" in caplog.text and "November 30th, 2026" in caplog.text


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
