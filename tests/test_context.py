"""Context budget, prompt caching, and usage accounting, through the fake Messages API."""

from __future__ import annotations

import itertools
import json

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.engine.history import validate
from agent.features.usage import report
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.importer import import_path
from tests.conftest import ALL_THINKING_MODES, IVAN, RETAIL_SLICE, SettingsFactory, customer_id
from tests.fake_anthropic import (
    FakeAnthropic,
    Reply,
    _prompt_layout,
    _strip_cache,
    error,
    text,
    tool_use,
)

thinking_mode = ALL_THINKING_MODES  # every test here under both thinking settings


def _runtime(make_settings: SettingsFactory, **overrides: object) -> Runtime:
    runtime = build_runtime(make_settings(**overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    return runtime


def _bound(runtime: Runtime) -> str:
    return runtime.agent.start_conversation(customer_id=customer_id(runtime, IVAN["email"]))


def test_cache_breakpoints_and_a_byte_stable_prefix(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(tool_use("list_orders", {}), text("Four orders."), text("You're welcome."))
    conversation = _bound(runtime)
    runtime.agent.ask(conversation, "what did I order?")
    runtime.agent.ask(conversation, "thanks")
    bodies = fake.bodies
    for body in bodies:
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in t for t in body["tools"][:-1])
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    # Tools and system are the same bytes every time; each request extends the previous one.
    head = {json.dumps([b["tools"], b["system"]], sort_keys=True) for b in bodies}
    assert len(head) == 1
    for before, after in itertools.pairwise(bodies):
        earlier = _strip_cache(before["messages"])
        assert _strip_cache(after["messages"])[: len(earlier)] == earlier
    # The stored history has no cache_control in it.
    with transaction(runtime.engine) as session:
        stored = json.dumps(
            [m.content for m in load_messages(session=session, conversation_id=conversation)]
        )
    assert "cache_control" not in stored


def test_cache_usage_is_recorded_and_costed(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(tool_use("list_orders", {}), text("Four orders."))
    conversation = _bound(runtime)
    result = runtime.agent.ask(conversation, "what did I order?")
    assert result.usage["cache_read_input_tokens"] > 0  # the second call reused the first's prefix
    assert result.usage["cache_creation_input_tokens"] > 0
    rows, total = report(runtime.engine, runtime.settings.pricing, by="conversation")
    (row,) = rows
    assert row.key == conversation and row.calls == 2
    assert total.cache_read_input_tokens == result.usage["cache_read_input_tokens"]
    price = runtime.settings.pricing[runtime.settings.model]
    expected = (
        total.input_tokens * price.input + total.output_tokens * price.output
        + total.cache_creation_input_tokens * price.cache_write
        + total.cache_read_input_tokens * price.cache_read
    ) / 1e6  # fmt: skip
    assert total.cost_usd == pytest.approx(expected) and total.cost_usd > 0
    assert 0 < total.cache_hit_share < 1


def test_usage_command_and_endpoint(
    make_settings: SettingsFactory, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from agent.api.app import create_app
    from agent.store.keys import create_key
    from agent.store.tables import KeyScope

    runtime = _runtime(make_settings)
    fake.enqueue(tool_use("list_orders", {}), text("one"), text("two"))
    for _ in range(2):
        runtime.agent.ask(_bound(runtime), "hi")
    billed_input = sum(u["input_tokens"] for u in fake.usages)
    billed_reads = sum(u["cache_read_input_tokens"] for u in fake.usages)

    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", runtime.settings.resolved_database_url())
    out = CliRunner().invoke(app, ["usage", "--by", "model", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    (row,) = data["rows"]
    assert row["key"] == runtime.settings.model and data["total"]["calls"] == 3
    assert data["total"]["input_tokens"] == billed_input  # what the API billed, to the token
    assert data["total"]["cache_read_input_tokens"] == billed_reads > 0
    assert CliRunner().invoke(app, ["usage", "--by", "week"]).exit_code != 0

    with transaction(runtime.engine) as session:
        admin = create_key(session=session, name="ops", scope=KeyScope.ADMIN)[1]
        backend = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
    with TestClient(create_app(runtime.settings, runtime)) as client:
        by_conversation = client.get("/v1/usage", params={"by": "conversation"},
                                     headers={"Authorization": f"Bearer {admin}"}).json()  # fmt: skip
        assert len(by_conversation["rows"]) == 2
        assert by_conversation["total"]["input_tokens"] == billed_input
        assert by_conversation["total"]["cost_usd"] == pytest.approx(data["total"]["cost_usd"])
        denied = client.get("/v1/usage", headers={"Authorization": f"Bearer {backend}"})
        assert denied.status_code == 403


def test_budget_is_never_exceeded_and_trimming_keeps_what_matters(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    # The tool definitions (~2,900 estimated tokens, with search_knowledge_base's
    # query_in_english) fit in half of it.
    budget = 6_300
    runtime = _runtime(make_settings, context_budget_tokens=budget, prompt_caching=False)

    def answer(body: dict) -> Reply:
        last = body["messages"][-1]["content"]
        if any(b.get("type") == "tool_result" for b in last):
            return text("Your orders are listed above; anything else? " + "detail " * 40)
        return tool_use("list_orders", {"limit": 2})

    fake.default = answer
    conversation = _bound(runtime)
    first_message = "I have a question about my recent orders, please help."
    runtime.agent.ask(conversation, first_message)
    for turn in range(25):
        runtime.agent.ask(conversation, f"And again, turn {turn}?")
    sizes = [_prompt_layout(b)[0] for b in fake.bodies]
    assert max(sizes) <= budget
    late = fake.bodies[-1]["messages"]
    assert len(late) < 2 + 25 * 4  # older turns left the request...
    validate(late)  # ...which still alternates and answers every tool_use
    assert late[0]["content"][0]["text"] == first_message  # the first customer message stays
    assert "left out to fit the context budget" in late[0]["content"][1]["text"]
    assert late[-1]["content"][0]["type"] == "tool_result"
    # Once cut, the request keeps its start for several turns (a stable, cacheable prefix).
    starts = [json.dumps(b["messages"][:2]) for b in fake.bodies[-40:]]
    assert len(set(starts)) <= 10
    with transaction(runtime.engine) as session:  # nothing is deleted from the database
        assert len(load_messages(session=session, conversation_id=conversation)) == 26 * 4


def test_oversized_tool_results_are_cut_with_a_note(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings, tool_result_max_chars=300)
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("ok"))
    runtime.agent.ask(_bound(runtime), "details please")
    content = fake.bodies[1]["messages"][-1]["content"][0]["content"]
    assert content.startswith('{"order_id":"#W6893533"') and "[Truncated:" in content
    assert len(content) < 450


def test_prompt_too_long_compacts_and_retries(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings)
    conversation = _bound(runtime)
    fake.enqueue(*[text(f"answer {i}") for i in range(4)])
    for i in range(4):
        runtime.agent.ask(conversation, f"question {i} " + "words " * 50)
    fake.enqueue(
        error(400, "prompt is too long: 212000 tokens > 200000 maximum"), text("Still here.")
    )
    result = runtime.agent.ask(conversation, "one more")
    assert result.reply == "Still here." and not result.degraded
    failed, retried = fake.bodies[-2:]
    assert len(retried["messages"]) < len(failed["messages"])
    validate(_strip_cache(retried["messages"]))


def test_context_window_exceeded_stop_reason_compacts_and_retries(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    conversation = _bound(runtime)
    fake.enqueue(text("first"), text("second"))
    runtime.agent.ask(conversation, "a " * 200)
    runtime.agent.ask(conversation, "b " * 200)
    fake.enqueue(
        text("Partial answ", stop_reason="model_context_window_exceeded"), text("Complete answer.")
    )
    result = runtime.agent.ask(conversation, "c")
    assert result.reply == "Complete answer."
    assert len(fake.bodies[-1]["messages"]) < len(fake.bodies[-2]["messages"])


def test_token_counting_api_counts_an_unchanged_prefix_once(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings, count_tokens_api=True)
    conversation = _bound(runtime)
    fake.enqueue(text("one"), text("two"), text("three"))
    for i in range(3):
        runtime.agent.ask(conversation, f"message {i}")
    counted = [r for r in fake.requests if r.path.endswith("/count_tokens")]
    assert len(counted) == 1  # later requests extend a known prefix: estimated, not recounted
    assert runtime.agent.counter.chars_per_token != 3.5  # calibrated by the exact count


def test_summary_is_stored_carried_and_reused_after_restart(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    overrides = {
        "context_budget_tokens": 4_000,
        "context_strategy": "summarize",
        "prompt_caching": False,
    }
    runtime = _runtime(make_settings, **overrides)

    def answer(body: dict) -> Reply:
        system = body["system"] if isinstance(body["system"], str) else body["system"][0]["text"]
        if system.startswith("You summarise"):
            assert "Customer: Where are my orders" in body["messages"][0]["content"][0]["text"]
            return text("SUMMARY: Ivan asked about his orders several times; all were listed.")
        if any(b.get("type") == "tool_result" for b in body["messages"][-1]["content"]):
            return text("Here they are. " + "detail " * 40)
        return tool_use("list_orders", {"limit": 2})

    fake.default = answer
    conversation = _bound(runtime)
    for turn in range(20):
        runtime.agent.ask(conversation, f"Where are my orders, take {turn}?")
    summaries = [b for b in fake.bodies if not b.get("tools")]
    assert summaries  # older turns were condensed...
    last = fake.bodies[-1]
    assert "SUMMARY: Ivan asked" in last["system"]  # ...and the summary rides in the system prompt
    assert all(_prompt_layout(b)[0] <= 4_000 for b in fake.bodies if b.get("tools"))
    validate(last["messages"])
    assert "left out to fit" not in json.dumps(last["messages"])  # the summary replaces the note
    _, total = report(runtime.engine, runtime.settings.pricing)
    # Every call is billed, summaries included (their usage is stored with the next reply).
    assert total.input_tokens == sum(u["input_tokens"] for u in fake.usages)
    assert total.output_tokens == sum(u["output_tokens"] for u in fake.usages)

    restarted = build_runtime(make_settings(**overrides))
    before = len(fake.bodies)
    restarted.agent.ask(conversation, "And one more question?")
    after = fake.bodies[before:]
    # The stored summary is read back: the first request after the restart already carries it,
    # and any newer summary builds on it rather than starting over.
    first_after = next(b for b in after if b.get("tools"))
    assert "SUMMARY: Ivan asked" in first_after["system"] or any(not b.get("tools") for b in after)
    for body in after:
        if not body.get("tools"):
            assert body["messages"][0]["content"][0]["text"].startswith(
                "Summary so far:\nSUMMARY: Ivan asked"
            )
    assert "SUMMARY: Ivan asked" in fake.bodies[-1]["system"]
