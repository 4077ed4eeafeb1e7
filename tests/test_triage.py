"""`supportbot triage`: batch triage of tickets through the Message Batches API (the fake)."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agent.cli import app
from agent.config import Settings
from agent.features import triage_batches
from ingest.pipeline import ingest
from kb import KnowledgeBase
from tests.fake_anthropic import FakeAnthropic, Reply, error

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


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo help centre, ingested once for this module; each test gets a copy."""
    data = tmp_path_factory.mktemp("kb") / "data"
    ingest(KnowledgeBase.open(Settings(data_dir=data)), [DEMO_DOCS])
    return data


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeAnthropic, demo_kb: Path
) -> Path:
    shutil.copytree(demo_kb, tmp_path / "data")
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
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
    record = {
        "category": category, "priority": "high" if "broken" in content else "normal",
        "sentiment": "negative" if "broken" in content else "neutral",
        "suggested_reply": "Sorry about that [1].", "sources": [1],
    }  # fmt: skip
    # Thinking may come before the record: the record is the text block, wherever it is.
    thinking = {"type": "thinking", "thinking": "", "signature": "sig"}
    return Reply([thinking, {"type": "text", "text": json.dumps(record)}])


def _triage(path: Path, out: Path, *extra: str) -> Result:
    return runner.invoke(
        app, ["triage", str(path), "--out", str(out), "--poll-seconds", "0", *extra]
    )


@pytest.mark.slow
def test_batch_triage_end_to_end_and_resume(env: Path, fake: FakeAnthropic) -> None:
    fake.batch_result = _outcome
    fake.batch_polls = 2
    out = env.with_name("results.jsonl")
    first = _triage(env, out)
    assert first.exit_code == 2  # some tickets failed, and two lines were skipped
    assert (
        "line 5: invalid JSON" in first.output and "line 6: missing or invalid text" in first.output
    )
    assert "errored ticket T-103: invalid_request_error: request too large" in first.output
    assert "expired ticket T-102" in first.output and "created" in first.output
    assert "Traceback" not in first.output
    assert re.search(r"estimated cost \$\d+\.\d{4} at the Batch discount", first.output)

    results = {r["ticket_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert list(results) == ["T-100", "T-101", "T-102", "T-103"]
    assert (
        results["T-100"]["category"] == "returns_refunds" and results["T-100"]["priority"] == "high"
    )
    assert results["T-100"]["sources"][0]["url"].startswith("https://help.acme.example/")
    assert results["T-101"]["status"] == "ok" and results["T-102"]["status"] == "expired"

    (batch,) = fake.batches.values()
    requests = batch["requests"]
    params = requests[1]["params"]
    # Structured outputs, not a forced tool (the default model rejects tool_choice "tool").
    assert "tool_choice" not in params and "tools" not in params
    assert params["output_config"]["format"]["type"] == "json_schema"
    assert params["output_config"]["effort"] == "low"
    assert params["thinking"] == {"type": "between_tools"}
    # The shared instructions are one cached prefix, byte-identical in every request.
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert len({json.dumps(r["params"]["system"]) for r in requests}) == 1
    assert (
        "<passages>" in params["messages"][0]["content"]
        and "Descaling" in params["messages"][0]["content"]
    )
    assert len({r["custom_id"] for r in requests}) == 4

    again = _triage(env, out)
    assert "resumed" in again.output and len(fake.batches) == 1  # not paid for twice
    assert {json.loads(line)["ticket_id"] for line in out.read_text().splitlines()} == set(results)

    env.write_text(json.dumps(TICKETS[1]) + "\n")  # different input: a new batch
    changed = _triage(env, out)
    assert changed.exit_code == 0 and "created" in changed.output and len(fake.batches) == 2


@pytest.mark.slow
def test_batches_stay_within_limits_and_an_interrupted_run_resumes(
    env: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.batch_result = _outcome
    out = env.with_name("results.jsonl")
    submit = triage_batches.submit
    calls: list[Path] = []

    def interrupted_after_the_first(client: Any, body: Path) -> str:
        calls.append(body)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return submit(client, body)

    monkeypatch.setattr(triage_batches, "submit", interrupted_after_the_first)
    stopped = _triage(env, out, "--max-requests", "2")
    assert stopped.exit_code == 130 and "run the same command again to resume" in stopped.output
    assert "Traceback" not in stopped.output and len(fake.batches) == 1 and not out.exists()

    monkeypatch.setattr(triage_batches, "submit", submit)
    resumed = _triage(env, out, "--max-requests", "2")
    assert resumed.exit_code == 2 and "tickets 1–2 (resumed)" in resumed.output
    assert "tickets 3–4 (created" in resumed.output
    assert len(fake.batches) == 2  # the first batch was polled, not sent again
    sent = [r["custom_id"] for b in fake.batches.values() for r in b["requests"]]
    assert [len(b["requests"]) for b in fake.batches.values()] == [2, 2]
    assert len(set(sent)) == 4  # custom ids are unique across batches
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["ticket_id"] for r in rows] == ["T-100", "T-101", "T-102", "T-103"]

    done = _triage(env, out, "--max-requests", "2")  # everything written: nothing to send
    assert len(fake.batches) == 2 and "results already written" in done.output
    assert out.read_text().splitlines() == [json.dumps(r, separators=(",", ":")) for r in rows]


@pytest.mark.slow
def test_a_batch_closes_at_the_byte_limit(env: Path, fake: FakeAnthropic) -> None:
    fake.batch_result = _outcome
    out = env.with_name("results.jsonl")
    result = _triage(env, out, "--max-bytes", "9000")
    sizes = [len(json.dumps({"requests": b["requests"]})) for b in fake.batches.values()]
    assert len(sizes) >= 2 and max(sizes) <= 9000, sizes
    assert sum(len(b["requests"]) for b in fake.batches.values()) == 4
    assert result.output.count("(created") == len(sizes)
    assert [json.loads(line)["ticket_id"] for line in out.read_text().splitlines()] == [
        "T-100", "T-101", "T-102", "T-103",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["refused", "404", "401"])
def test_an_unavailable_batches_api_falls_back_to_offline_triage(
    env: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    if failure == "refused":
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("SUPPORTBOT_MAX_RETRIES", "0")
        reason = "unreachable: "
    elif failure == "404":
        monkeypatch.setenv("ANTHROPIC_BASE_URL", f"{fake.url}/no-such-api")
        reason = "404 not_found_error"
    else:
        fake.batch_error = error(401, "invalid x-api-key")
        reason = "401 authentication_error"
    out = env.with_name("results.jsonl")
    result = _triage(env, out)
    assert result.exit_code == 2  # as offline: two input lines were skipped
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    (line,) = [x for x in result.output.splitlines() if "Batches API" in x]
    assert line.startswith(f"error: Claude's Message Batches API is unavailable ({reason}")
    assert line.endswith("; triaging offline instead")
    assert result.output.count("line 5: invalid JSON") == 1  # reported once, not per attempt
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["ticket_id"] for r in rows] == ["T-100", "T-101", "T-102", "T-103"]
    assert all(r["suggested_reply"].startswith("(offline triage)") for r in rows)


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
    from agent.features.triage import read_tickets

    path = tmp_path / "tickets.csv"
    path.write_text(
        'id,subject,body\nT-1,Broken,"It arrived broken.\n\nPlease help, today!"\nT-2,,\n'
    )
    tickets, problems = read_tickets(path)
    assert [t.id for t in tickets] == ["T-1"]
    assert tickets[0].text == "Broken\n\nIt arrived broken.\n\nPlease help, today!"
    assert problems == ["line 5: missing or invalid text"]


def test_claude_records_are_validated_on_our_side() -> None:
    from agent.features.triage import TriageOutput, parse_output

    record = {"category": "shipping", "priority": "high", "sentiment": "negative",
              "suggested_reply": "Sorry [1].", "sources": [1]}  # fmt: skip
    thinking = {"type": "thinking", "thinking": "", "signature": "s"}
    ok = parse_output([thinking, {"type": "text", "text": json.dumps(record)}], "end_turn")
    assert isinstance(ok, TriageOutput) and ok.category == "shipping"
    wrong = parse_output([{"type": "text", "text": json.dumps({**record, "priority": "p0"})}], None)
    assert isinstance(wrong, str) and wrong.startswith("invalid triage output: priority")
    assert parse_output([{"type": "text", "text": "{not json"}], "end_turn").startswith("invalid")
    assert parse_output([], "refusal") == "refused"
    assert parse_output([{"type": "text", "text": "{"}], "max_tokens").startswith("cut off")


def test_without_structured_outputs_the_prompt_asks_for_json() -> None:
    from agent.features.triage import Ticket, TriageRequests

    ticket = Ticket(id="T-1", text="Where is my parcel?")
    api = TriageRequests(Settings(), "claude-sonnet-5-5").params(ticket, [])
    bedrock = TriageRequests(Settings(provider="bedrock"), "anthropic.claude-sonnet-5-5")
    params = bedrock.params(ticket, [])
    assert api["output_config"]["format"]["schema"]["additionalProperties"] is False
    assert "format" not in params.get("output_config", {}) and "tool_choice" not in params
    assert "Answer with one JSON object" in params["system"][0]["text"]
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_duplicate_ticket_ids_are_skipped_with_their_line(tmp_path: Path) -> None:
    from agent.features.triage import read_tickets

    path = tmp_path / "tickets.jsonl"
    path.write_text('{"id": "A", "text": "one"}\n\n{"id": "A", "text": "two"}\n[1]\n')
    tickets, problems = read_tickets(path)
    assert [t.text for t in tickets] == ["one"]
    assert problems == ["line 3: duplicate ticket id 'A'", "line 4: not a JSON object"]
