"""GET /metrics after scripted turns, read with Prometheus's own text parser: turns and their
latency by outcome, model calls by model and outcome, tokens by kind, tool calls and errors,
degraded turns, hand-offs by reason, 429s and open tickets; the admin-key setting; and the
sum over worker processes in prometheus-client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import create_app
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, error, text, tool_use

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-5-5"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    keys: dict[str, str]

    def auth(self, scope: str = "backend") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def start(self) -> str:
        body = {"customer_email": IVAN["email"]}
        return str(
            self.client.post("/v1/conversations", json=body, headers=self.auth()).json()["id"]
        )

    def say(self, conversation: str, message: str) -> tuple[int, dict]:
        response = self.client.post(f"/v1/conversations/{conversation}/messages",
                                    json={"text": message}, headers=self.auth())  # fmt: skip
        return response.status_code, response.json()

    def scrape(self, **headers: str) -> Samples:
        response = self.client.get("/metrics", headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.text)


def _api(make_settings: SettingsFactory, **overrides: object) -> Iterator[Api]:
    runtime = build_runtime(make_settings(**overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    keys = {}
    with transaction(runtime.engine) as session:
        for scope in KeyScope:
            keys[scope.value] = create_key(session=session, name=scope.value, scope=scope)[1]
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    yield from _api(make_settings, rate_limit_per_conversation=2)


def test_metrics_count_what_scripted_turns_did(api: Api, fake: FakeAnthropic) -> None:
    before = api.scrape()  # counters are per process: the test reads what it changed

    # A turn with a tool call, then one whose tool call fails, in one conversation...
    first = api.start()
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("Delivered."))
    status, answered = api.say(first, "where is my order?")
    assert status == 200 and answered["outcome"] == "answered"
    fake.enqueue(tool_use("order_status", {"order_id": "#W0000000"}), text("No such order."))
    status, missing = api.say(first, "and #W0000000?")
    assert status == 200 and missing["tool_calls"][0]["is_error"] is True
    # ...whose third message in the minute is refused (429): counted, and no turn.
    status, _ = api.say(first, "hello again")
    assert status == 429
    # A degraded turn: Claude stays overloaded, the offline model answers.
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])
    status, degraded = api.say(api.start(), "hello")
    assert degraded["degraded"] is True
    # A hand-off.
    fake.enqueue(tool_use("escalate_to_human", {"reason": "refund dispute", "summary": "x"}),
                 text("A colleague will reply here."))  # fmt: skip
    status, handed = api.say(api.start(), "a person please")
    assert handed["outcome"] == "handed_off"

    after = api.scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("supportbot_turns_total", outcome="answered") == 3
    assert delta("supportbot_turns_total", outcome="handed_off") == 1
    assert delta("supportbot_turn_duration_seconds_count", outcome="answered") == 3
    assert delta("supportbot_turn_duration_seconds_sum", outcome="answered") > 0
    assert delta("supportbot_model_calls_total", model=MODEL, outcome="ok") == 6
    assert delta("supportbot_model_calls_total", model=MODEL, outcome="error") == 1
    assert delta("supportbot_model_calls_total", model="offline", outcome="degraded") >= 1
    assert delta("supportbot_model_call_duration_seconds_count", model=MODEL, outcome="ok") == 6
    assert delta("supportbot_degraded_turns_total") == 1
    assert delta("supportbot_tool_calls_total", tool="order_status") == 2
    assert delta("supportbot_tool_errors_total", tool="order_status") == 1
    assert delta("supportbot_tool_calls_total", tool="escalate_to_human") == 1
    assert delta("supportbot_handoffs_total", reason="escalated") == 1
    assert delta("supportbot_rate_limited_requests_total") == 1
    # Tokens by kind: what the turns reported, call by call.
    turns = (answered, missing, handed)
    for kind, field in (("input", "input_tokens"), ("output", "output_tokens"),
                        ("cache_write", "cache_creation_input_tokens"),
                        ("cache_read", "cache_read_input_tokens")):  # fmt: skip
        reported = sum(t["usage"].get(field, 0) for t in turns)
        assert delta("supportbot_tokens_total", model=MODEL, kind=kind) == reported, kind
    assert delta("supportbot_tokens_total", model=MODEL, kind="output") > 0

    # Open tickets are read from the database when scraped.
    assert value(after, "supportbot_open_tickets", status="open") == 1
    assert value(after, "supportbot_open_tickets", status="claimed") == 0
    (ticket,) = api.client.get("/v1/tickets?status=open", headers=api.auth("admin")).json()
    api.client.post(f"/v1/tickets/{ticket['id']}/claim", headers=api.auth("admin"))
    claimed = api.scrape()
    assert value(claimed, "supportbot_open_tickets", status="open") == 0
    assert value(claimed, "supportbot_open_tickets", status="claimed") == 1


def test_a_tool_round_cap_is_a_hand_off_by_its_own_reason(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    for api in _api(make_settings, max_tool_iterations=1):
        before = api.scrape()
        lookup = tool_use("order_status", {"order_id": IVAN["orders"][0]})
        fake.enqueue(lookup, tool_use("order_status", {"order_id": IVAN["orders"][1]}))
        status, capped = api.say(api.start(), "where are my orders?")
        assert status == 200 and capped["outcome"] == "iteration_cap"
        after = api.scrape()
        assert (
            value(after, "supportbot_handoffs_total", reason="tool_round_cap")
            - value(before, "supportbot_handoffs_total", reason="tool_round_cap")
            == 1
        )


def test_metrics_can_require_an_admin_key(make_settings: SettingsFactory) -> None:
    for api in _api(make_settings, metrics_require_key=True):
        anonymous = api.client.get("/metrics")
        assert anonymous.status_code == 401
        assert api.client.get("/metrics", headers=api.auth("backend")).status_code == 403
        assert "supportbot_turns" in api.client.get("/metrics", headers=api.auth("admin")).text


RECORD = """
from agent.observability import metrics
metrics.TURNS.labels(outcome="answered").inc()
metrics.count_usage("m", {"input_tokens": 5, "output_tokens": 2})
"""
SCRAPE = """
from fastapi.testclient import TestClient
from agent.api.app import create_app
from agent.config import Settings
with TestClient(create_app(Settings(data_dir={data!r}))) as client:
    print(client.get("/metrics").text)
"""


@pytest.mark.slow
def test_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(shared), "PYTHONPATH": str(ROOT)}

    def run(script: str) -> str:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(RECORD)
    run(RECORD)  # a second worker
    samples = parse(run(SCRAPE.format(data=str(tmp_path / "data"))))
    assert value(samples, "supportbot_turns_total", outcome="answered") == 2
    assert value(samples, "supportbot_tokens_total", model="m", kind="input") == 10
    assert value(samples, "supportbot_open_tickets", status="open") == 0
