"""Choosing the provider: Anthropic (or any compatible server), Amazon Bedrock, Google Vertex."""

from __future__ import annotations

import sys
import types

import anthropic
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Settings
from agent.models.claude import ClaudeModel, ProviderNotConfigured, make_client


def test_anthropic_is_the_default_and_honours_the_base_url() -> None:
    client = make_client(Settings(anthropic_api_key="k", anthropic_base_url="http://127.0.0.1:9"))
    assert type(client) is anthropic.Anthropic and str(client.base_url).startswith(
        "http://127.0.0.1:9"
    )


@pytest.fixture
def extras_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("boto3", "google", "google.auth"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_bedrock_builds_the_bedrock_client_with_the_mapped_model(extras_installed: None) -> None:
    settings = Settings(
        provider="bedrock", aws_region="eu-west-1", model="claude-sonnet-4-5-20250929"
    )
    model = ClaudeModel(settings)
    assert type(model.client) is anthropic.AnthropicBedrock
    assert "eu-west-1" in str(model.client.base_url)
    assert model.name == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert settings.uses_claude()  # no Anthropic key needed


def test_vertex_builds_the_vertex_client(extras_installed: None) -> None:
    settings = Settings(provider="vertex", vertex_region="us-east5", vertex_project_id="shop",
                        provider_model="claude-sonnet-5-5@custom")  # fmt: skip
    model = ClaudeModel(settings)
    assert (
        type(model.client) is anthropic.AnthropicVertex and model.name == "claude-sonnet-5-5@custom"
    )


def test_missing_settings_and_extras_are_clear(
    extras_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ProviderNotConfigured, match="SUPPORTBOT_AWS_REGION"):
        make_client(Settings(provider="bedrock"))
    with pytest.raises(ProviderNotConfigured, match="SUPPORTBOT_PROVIDER_MODEL"):
        ClaudeModel(Settings(provider="bedrock", aws_region="eu-west-1", model="claude-next-9"))
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if the extra were not installed
    with pytest.raises(ProviderNotConfigured, match=r"pip install 'supportbot\[bedrock\]'"):
        make_client(Settings(provider="bedrock", aws_region="eu-west-1"))


def test_cli_reports_a_misconfigured_provider(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SUPPORTBOT_PROVIDER", "vertex")
    monkeypatch.setenv("SUPPORTBOT_MODEL", "claude-next-9")  # a model without a known Vertex id
    result = CliRunner().invoke(app, ["ask", "hi"])
    assert result.exit_code == 1
    assert result.output.startswith("error: Set SUPPORTBOT_PROVIDER_MODEL to vertex's id")
    assert "Traceback" not in result.output
