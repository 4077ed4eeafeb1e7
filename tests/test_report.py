"""The support report's figures, checked against a scripted set of conversations built through
the HTTP API and the turn engine with the wire-level fake Claude: some resolved, some handed off
for different reasons, one abandoned, one still open, some rated; spread over three days."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from agent.api.app import create_app
from agent.cli import app as cli
from agent.features.usage import totals
from agent.store.db import transaction
from agent.store.tables import (
    Conversation,
    ConversationEnd,
    ConversationRating,
    IdentityCheck,
    Message,
    ProposedAction,
    Ticket,
    aware,
    utcnow,
)
from tests.conftest import IVAN, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, refusal, text, tool_use
from tests.test_api import Api, _runtime

PENDING = IVAN["orders"][1]
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}
ESCALATE = tool_use(
    "escalate_to_human", {"reason": "Customer asked for a person", "summary": "wants a person"}
)
REASONS = ["customer_asked", "tool_cap", "refusal", "identity_locked", "model_unavailable",
           "needs_person"]  # fmt: skip


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings, max_tool_iterations=2)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


@dataclass
class Chat:
    api: Api
    id: str
    token: str | None

    def headers(self) -> dict[str, str]:
        if self.token:
            return self.api.auth("widget", **{"X-Conversation-Token": self.token})
        return self.api.auth("backend")

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.api.client.post(f"/v1/conversations/{self.id}{path}", json=body or {},
                                        headers=self.headers())  # fmt: skip
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def say(self, words: str) -> dict[str, Any]:
        return self.post("/messages", {"text": words})


def _chat(api: Api, scope: str = "widget", **body: object) -> Chat:
    started = api.start(scope, **body)
    return Chat(api, started["id"], started.get("conversation_token"))


def _shift(api: Api, conversation_id: str, days: int) -> None:
    """Move everything recorded about a conversation `days` back in time, as if it had
    happened then (intervals unchanged)."""
    delta = timedelta(days=days)
    with transaction(api.runtime.engine) as session:
        rows: list[tuple[Any, list[str]]] = [
            (session.get(Conversation, conversation_id), ["created_at", "updated_at"]),
            (session.get(ConversationEnd, conversation_id), ["ended_at"]),
            (session.get(ConversationRating, conversation_id), ["rated_at"]),
        ]
        for table, columns in (
            (Message, ["created_at"]),
            (Ticket, ["created_at", "resolved_at"]),
            (ProposedAction, ["created_at", "expires_at", "decided_at"]),
            (IdentityCheck, ["created_at"]),
        ):
            found = session.exec(select(table).where(col(table.conversation_id) == conversation_id))  # type: ignore[attr-defined]
            rows += [(row, columns) for row in found]
        for row, columns in rows:
            if row is None:
                continue
            for name in columns:
                if getattr(row, name) is not None:
                    setattr(row, name, aware(getattr(row, name)) - delta)
            session.add(row)


def _messages(api: Api, conversation_id: str) -> list[Message]:
    with Session(api.runtime.engine) as session:
        query = select(Message).where(Message.conversation_id == conversation_id)
        return list(session.exec(query.order_by(col(Message.sequence))).all())


def _gap(api: Api, conversation_id: str, first: int, then: int) -> float:
    """Seconds from message `first` to message `then` (sequence numbers)."""
    at = {m.sequence: aware(m.created_at) for m in _messages(api, conversation_id)}
    return (at[then] - at[first]).total_seconds()


@dataclass
class Scripted:
    chats: dict[str, Chat]
    first_replies: list[float]
    resolutions: list[float]
    hand_off_resolutions: list[float]
    cost: float


def _script(api: Api, fake: FakeAnthropic) -> Scripted:
    """Two days ago: R1 (the customer confirmed), R2 (did not come back), A1 (left a proposed
    change unanswered). Yesterday: R3 (a change executed, then confirmed), H1 (asked for a
    person; staff replied and resolved), H2 (the tool-round cap). Today: H3 (a refusal, then
    asked for a person), O1 (answered, inside the window), E1 (no message: not counted)."""
    c: dict[str, Chat] = {}
    c["R1"] = _chat(api)
    fake.enqueue(text("You can return delivered items within 30 days."))
    c["R1"].say("How long do I have to return something?")
    c["R1"].post("/end")
    c["R1"].post("/rating", {"score": "up", "comment": "Quick and clear"})

    c["R2"] = _chat(api, "backend")
    fake.enqueue(text("Yes, we ship to Canada."))
    c["R2"].say("Do you ship to Canada?")

    c["A1"] = _chat(api, "backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    assert c["A1"].say(f"Cancel {PENDING}, I ordered it by mistake")["pending_action"]

    c["R3"] = _chat(api, "backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    pending = c["R3"].say(f"Please cancel {PENDING}, ordered by mistake")["pending_action"]
    fake.enqueue(text(f"Done: {PENDING} is cancelled."))
    assert c["R3"].post(f"/actions/{pending['id']}/confirm")["action"]["status"] == "executed"
    c["R3"].post("/end")
    c["R3"].post("/rating", {"score": "up"})

    c["H1"] = _chat(api)
    fake.enqueue(ESCALATE, text("I've passed you to a colleague."))
    assert c["H1"].say("I'd like to talk to a human, please.")["state"] == "human"
    (ticket,) = api.client.get("/v1/tickets?status=open", headers=api.auth("admin")).json()
    desk = f"/v1/tickets/{ticket['id']}"
    assert api.client.post(desk + "/reply", json={"text": "Hi, Sam here."},
                           headers=api.auth("admin")).status_code == 200  # fmt: skip
    assert api.client.post(desk + "/resolve", headers=api.auth("admin")).status_code == 200
    c["H1"].post("/rating", {"score": "down", "comment": "Took a while"})

    c["H2"] = _chat(api)
    order = IVAN["orders"][0]
    fake.enqueue(*[tool_use("order_status", {"order_id": order}) for _ in range(3)])
    assert c["H2"].say(f"Where is {order}?")["outcome"] == "iteration_cap"

    c["H3"] = _chat(api)
    fake.enqueue(refusal())
    assert c["H3"].say("Something the model declines")["outcome"] == "refused"
    fake.enqueue(ESCALATE, text("I've passed you to a colleague."))
    c["H3"].say("Then let me talk to a person.")

    c["O1"] = _chat(api)
    fake.enqueue(text("Our kettles have a two-year warranty."))
    c["O1"].say("What's the warranty on kettles?")
    c["E1"] = _chat(api)

    # Sequence numbers of each conversation's first message the customer saw (after their
    # first, message 1), and of the bot's last answer in the resolved ones.
    first_reply = {"R1": 2, "R2": 2, "A1": 2, "R3": 2, "H1": 4, "H2": 6, "H3": 2, "O1": 2}
    resolution = {"R1": 2, "R2": 2, "R3": 4}
    with Session(api.runtime.engine) as session:
        h1 = session.exec(select(Ticket).where(Ticket.conversation_id == c["H1"].id)).one()
        h1_start = _messages(api, c["H1"].id)[0].created_at
        assert h1.resolved_at is not None
        hand_off = (aware(h1.resolved_at) - aware(h1_start)).total_seconds()
    cost = sum(totals(_messages(api, chat.id), api.runtime.settings.pricing).cost_usd or 0.0
               for chat in c.values())  # fmt: skip
    for name in ("R1", "R2", "A1"):
        _shift(api, c[name].id, 2)
    for name in ("R3", "H1", "H2"):
        _shift(api, c[name].id, 1)
    return Scripted(
        chats=c,
        first_replies=[_gap(api, c[k].id, 1, n) for k, n in first_reply.items()],
        resolutions=[_gap(api, c[k].id, 1, n) for k, n in resolution.items()],
        hand_off_resolutions=[hand_off],
        cost=cost,
    )


def _report(api: Api, query: str = "") -> dict[str, Any]:
    response = api.client.get(f"/v1/reports/summary{query}", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_reports_figures_match_the_scripted_conversations(
    api: Api, fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(api, fake)
    report = _report(api)
    total = report["total"]
    assert report["by"] == "day" and report["resolution_window_hours"] == 24
    assert {k: total[k] for k in ("conversations", "resolved", "resolved_confirmed", "handed_off",
                                  "abandoned", "ongoing")} == {
        "conversations": 8, "resolved": 3, "resolved_confirmed": 2, "handed_off": 3,
        "abandoned": 1, "ongoing": 1,
    }  # fmt: skip
    assert total["hand_offs_by_reason"] == {
        **dict.fromkeys(REASONS, 0), "customer_asked": 1, "tool_cap": 1, "refusal": 1
    }  # fmt: skip
    assert total["resolution_rate"] == pytest.approx(3 / 7)
    assert total["hand_off_rate"] == pytest.approx(3 / 7)
    assert total["abandonment_rate"] == pytest.approx(1 / 7)
    assert total["hand_off_rate_by_reason"]["tool_cap"] == pytest.approx(1 / 7)
    assert total["hand_off_rate_by_reason"]["needs_person"] == 0
    assert (total["rated"], total["thumbs_up"]) == (3, 2)
    assert total["satisfaction"] == pytest.approx(2 / 3)
    assert total["order_changes_executed"] == 1
    assert total["median_first_reply_seconds"] == pytest.approx(
        statistics.median(script.first_replies)
    )
    assert total["median_resolution_seconds"] == pytest.approx(
        statistics.median(script.resolutions)
    )
    assert total["median_hand_off_resolution_seconds"] == pytest.approx(
        script.hand_off_resolutions[0], abs=1e-6
    )
    assert script.cost > 0
    assert total["cost_usd"] == pytest.approx(script.cost)
    assert total["cost_per_conversation"] == pytest.approx(script.cost / 8)
    assert total["cost_per_resolution"] == pytest.approx(script.cost / 3)

    # Per day, each conversation in the day it started (UTC).
    today = utcnow().date()
    days = [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    rows = {row["period"]: row for row in report["rows"]}
    assert list(rows) == days
    figures = ("conversations", "resolved", "handed_off", "abandoned", "ongoing", "rated",
               "order_changes_executed")  # fmt: skip
    assert [tuple(rows[d][f] for f in figures) for d in days] == [
        (3, 2, 0, 1, 0, 1, 0),
        (3, 1, 2, 0, 0, 2, 1),
        (2, 0, 1, 0, 1, 0, 0),
    ]
    assert rows[days[0]]["resolution_rate"] == pytest.approx(2 / 3)
    assert rows[days[2]]["resolution_rate"] == 0  # one decided (handed off), one ongoing
    assert rows[days[1]]["hand_offs_by_reason"]["tool_cap"] == 1
    assert rows[days[1]]["satisfaction"] == pytest.approx(1 / 2)
    assert sum(r["cost_usd"] for r in rows.values()) == pytest.approx(script.cost)

    # Per week (starting on Monday) the same conversations add up to the same total.
    weeks = _report(api, "?by=week")
    assert all(date.fromisoformat(r["period"]).weekday() == 0 for r in weeks["rows"])
    assert sum(r["conversations"] for r in weeks["rows"]) == 8
    assert weeks["total"] == {**total}

    # Since a date (UTC): only the conversations started from then on.
    since = _report(api, f"?since={days[2]}")
    assert since["total"]["conversations"] == 2 and [r["period"] for r in since["rows"]] == [
        days[2]
    ]
    assert since["since"].startswith(f"{days[2]}T00:00:00")
    # The same moment in another zone.
    assert _report(api, f"?since={days[2]}T02:00:00%2B02:00")["total"] == since["total"]

    # The CLI prints the same report.
    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", api.runtime.settings.resolved_database_url())
    printed = CliRunner().invoke(cli, ["report", "--json"])
    assert printed.exit_code == 0, printed.output
    from_cli = json.loads(printed.output)
    assert from_cli["total"] == {**total, "cost_usd": pytest.approx(total["cost_usd"])}
    assert [r["period"] for r in from_cli["rows"]] == days
    table = CliRunner().invoke(cli, ["report", "--by", "week"])
    assert table.exit_code == 0 and "total" in table.output and "tool_cap" in table.output
    assert CliRunner().invoke(cli, ["report", "--by", "month"]).exit_code == 2


def test_later_the_open_conversation_counts_as_resolved(api: Api, fake: FakeAnthropic) -> None:
    from agent.features.report import summary

    chat = _chat(api)
    fake.enqueue(text("Our kettles have a two-year warranty."))
    chat.say("What's the warranty on kettles?")
    now = summary(api.runtime.engine, api.runtime.settings).total
    assert (now.ongoing, now.resolved, now.resolution_rate) == (1, 0, None)
    later = summary(api.runtime.engine, api.runtime.settings,
                    now=utcnow() + timedelta(hours=24, seconds=1)).total  # fmt: skip
    assert (later.ongoing, later.resolved, later.resolution_rate) == (0, 1, 1.0)
    assert later.cost_per_resolution == later.cost_usd


def test_only_staff_read_the_report(api: Api) -> None:
    for scope in ("widget", "backend"):
        assert _forbidden(api, scope)
    assert api.client.get("/v1/reports/summary").status_code == 401
    bad = api.client.get("/v1/reports/summary?by=month", headers=api.auth("admin"))
    assert bad.status_code == 422
    empty = _report(api)
    assert empty["rows"] == [] and empty["total"]["conversations"] == 0
    assert empty["total"]["resolution_rate"] is None and empty["total"]["satisfaction"] is None
    page = api.client.get("/staff/report")
    assert page.status_code == 200 and "/static/vendor/chart.umd.min.js" in page.text


def _forbidden(api: Api, scope: str) -> bool:
    response = api.client.get("/v1/reports/summary", headers=api.auth(scope))
    return response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_naive_dates_are_utc() -> None:
    from agent.features.report import period_of

    assert period_of(datetime(2026, 11, 4, 23, 59), "day") == "2026-11-04"
    assert period_of(datetime(2026, 11, 4, 23, 59), "week") == "2026-11-02"  # a Wednesday
