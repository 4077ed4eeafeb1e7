"""`supportbot triage`: batch triage of tickets through the Message Batches API (the fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Settings
from ingest.pipeline import ingest
from kb import KnowledgeBase
from tests.fake_anthropic import FakeAnthropic, Reply, error, tool_use

DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"
runner = CliRunner()

TICKETS = [
    {
        "id": "T-100",
        "subject": "Broken kettle",
        "text": "My kettle arrived broken, I want a refund!",
    },
    {"id": "T-101", "text": "How do I descale the EK-1500 kettle?"},
    {"id": "T-102", "text": "Where is my parcel? It is late."},
    {"id": "T-103", "text": "Please close my account."},
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic) -> Path:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    ingest(KnowledgeBase.open(Settings(data_dir=tmp_path / "data")), [DEMO_DOCS])
    lines = [json.dumps(t) for t in TICKETS] + ["{broken", json.dumps({"id": "T-104"})]
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _outcome(custom_id: str, params: dict) -> Reply | str:
    content = params["messages"][0]["content"]
    if "close my account" in content:
        return error(400, "request too large")
    if "parcel" in content:
        return "expired"
    category = "returns_refunds" if "refund" in content else "product"
    return tool_use("record_triage", {
        "category": category, "priority": "high" if "broken" in content else "normal",
        "sentiment": "negative" if "broken" in content else "neutral",
        "suggested_reply": "Sorry about that [1].", "sources": [1],
    })  # fmt: skip


@pytest.mark.slow
def test_batch_triage_end_to_end_and_resume(env: Path, fake: FakeAnthropic) -> None:
    fake.batch_result = _outcome
    fake.batch_polls = 2
    out = env.with_name("results.jsonl")
    first = runner.invoke(app, ["triage", str(env), "--out", str(out), "--poll-seconds", "0"])
    assert first.exit_code == 2  # some tickets failed, and two lines were skipped
    assert (
        "line 5: invalid JSON" in first.output and "line 6: missing or invalid text" in first.output
    )
    assert "errored ticket T-103: invalid_request_error: request too large" in first.output
    assert "expired ticket T-102" in first.output and "created" in first.output

    results = {r["ticket_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(results) == ["T-100", "T-101", "T-102", "T-103"]
    assert (
        results["T-100"]["category"] == "returns_refunds" and results["T-100"]["priority"] == "high"
    )
    assert results["T-100"]["sources"][0]["url"].startswith("https://help.acme.example/")
    assert results["T-101"]["status"] == "ok" and results["T-102"]["status"] == "expired"

    (batch,) = fake.batches.values()
    params = batch["requests"][1]["params"]
    assert params["tool_choice"] == {"type": "tool", "name": "record_triage"}
    assert (
        "<passages>" in params["messages"][0]["content"]
        and "Descaling" in params["messages"][0]["content"]
    )
    assert len({r["custom_id"] for r in batch["requests"]}) == 4

    again = runner.invoke(app, ["triage", str(env), "--out", str(out), "--poll-seconds", "0"])
    assert "resumed" in again.output and len(fake.batches) == 1  # not paid for twice
    assert {json.loads(line)["ticket_id"] for line in out.read_text().splitlines()} == set(results)

    env.write_text(json.dumps(TICKETS[1]) + "\n")  # different input: a new batch
    changed = runner.invoke(app, ["triage", str(env), "--out", str(out), "--poll-seconds", "0"])
    assert changed.exit_code == 0 and "created" in changed.output and len(fake.batches) == 2


@pytest.mark.slow
def test_offline_triage(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    out = env.with_name("offline.jsonl")
    result = runner.invoke(app, ["triage", str(env), "--out", str(out)])
    rows = {r["ticket_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "offline model" in result.output
    assert (
        rows["T-100"]["category"] == "returns_refunds" and rows["T-100"]["sentiment"] == "negative"
    )
    assert rows["T-102"]["category"] == "shipping"
    assert rows["T-101"]["suggested_reply"].startswith("(offline triage)")
    assert rows["T-101"]["sources"] and "Kettle" in rows["T-101"]["sources"][0]["title"]


def test_unreadable_ticket_files_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "tickets.xlsx"
    bad.write_text("x")
    result = runner.invoke(app, ["triage", str(bad)])
    assert result.exit_code == 1 and "use a .csv or .jsonl file" in result.output


def test_csv_tickets_may_span_lines(tmp_path: Path) -> None:
    from agent.triage import read_tickets

    path = tmp_path / "tickets.csv"
    path.write_text(
        'id,subject,body\nT-1,Broken,"It arrived broken.\n\nPlease help, today!"\nT-2,,\n'
    )
    tickets, problems = read_tickets(path)
    assert [t.id for t in tickets] == ["T-1"]
    assert tickets[0].text == "Broken\n\nIt arrived broken.\n\nPlease help, today!"
    assert problems == ["line 5: missing or invalid text"]
