"""The current Claude models' rules, through the real SDK against the wire-level fake.

The fake answers like claude-sonnet-5-5 as its docs describe it: 400 for forced tool choice,
sampling parameters, prefill and disabled thinking; signed thinking blocks bound to their model
and request prefix; notes between tool calls as progress-update thinking blocks; refusals with
`stop_details`; prompt-cache minimums and lifetimes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anthropic
import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.engine.events import Outcome, TurnFinished
from agent.engine.loop import Said
from agent.features.usage import report
from agent.models.base import ProgressDelta, Working
from agent.models.thinking import BINDING
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, Reply, refusal, text, tool_use

ORDER = IVAN["orders"][0]


def _runtime(make_settings: SettingsFactory, **overrides: Any) -> Runtime:
    runtime = build_runtime(make_settings(**overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    return runtime


def _verified(runtime: Runtime) -> str:
    return runtime.agent.start_conversation(customer_id=customer_id(runtime, IVAN["email"]))


def _stored(runtime: Runtime, conversation: str) -> list[Any]:
    with transaction(runtime.engine) as session:
        return list(load_messages(session=session, conversation_id=conversation))


def _thinking(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        b
        for m in body["messages"]
        if m["role"] == "assistant"
        for b in m["content"]
        if b["type"] in ("thinking", "redacted_thinking")
    ]


# -- the fake enforces the documented rules -------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tool_choice": {"type": "tool", "name": "t"}}, 'type "tool" and "any" are not supported'),
        ({"tool_choice": {"type": "any"}}, 'type "tool" and "any" are not supported'),
        ({"extra_body": {"temperature": 0.2}}, "`temperature` is deprecated"),
        ({"extra_body": {"top_k": 5}}, "`top_k` is deprecated"),
        ({"thinking": {"type": "disabled"}}, "thinking.type.between_tools"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, '"thinking.type.enabled" is'),
        (
            {"thinking": {"type": "between_tools"}, "output_config": {"effort": "max"}},
            "effort 'max' is not supported when thinking is disabled",
        ),
    ],
)
def test_sonnet_5_5_rejects_what_its_docs_say_it_rejects(
    fake: FakeAnthropic, extra: dict[str, Any], message: str
) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
    tool = {"name": "t", "description": "d", "input_schema": {"type": "object"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],
            **extra,
        )
    assert caught.value.status_code == 400 and message in str(caught.value)
    assert "invalid_request_error" in str(caught.value)


def test_prefill_is_rejected_and_older_models_keep_their_rules(fake: FakeAnthropic) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
    prefill = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]
    with pytest.raises(anthropic.BadRequestError, match="does not support assistant message"):
        client.messages.create(model="claude-sonnet-5-5", max_tokens=50, messages=prefill)
    fake.enqueue(text("ok"))  # Haiku 4.5 still takes prefill and forced tool choice
    reply = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=prefill)
    assert reply.content[0].type == "text"


def test_altered_or_missing_thinking_blocks_are_rejected(fake: FakeAnthropic) -> None:
    client = anthropic.Anthropic(api_key="k", base_url=fake.url, max_retries=0)
    fake.enqueue(tool_use("lookup", {"q": "x"}, say="Checking the order."))
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    user = {"role": "user", "content": "hi"}
    first = client.messages.create(
        model="claude-sonnet-5-5", max_tokens=500, messages=[user], tools=tools,
        thinking={"type": "adaptive", "display": "summarized"},
    )  # fmt: skip
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    assert [b["type"] for b in blocks] == ["thinking", "thinking", "tool_use"]
    use = blocks[-1]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                           "content": "found"}]}  # fmt: skip

    def again(content: list[dict[str, Any]]) -> None:
        client.messages.create(
            model="claude-sonnet-5-5", max_tokens=500, tools=tools,
            thinking={"type": "adaptive", "display": "summarized"},
            messages=[user, {"role": "assistant", "content": content}, result],
        )  # fmt: skip

    altered = [{**blocks[0], "thinking": "I was told to do this."}, *blocks[1:]]
    with pytest.raises(anthropic.BadRequestError, match="cannot be modified"):
        again(altered)
    with pytest.raises(anthropic.BadRequestError, match="passed back unchanged in a tool-use"):
        again([use])
    with pytest.raises(anthropic.BadRequestError, match="bound to a different conversation"):
        client.messages.create(
            model="claude-sonnet-5-5", max_tokens=500, tools=tools, system="changed",
            thinking={"type": "adaptive", "display": "summarized"},
            messages=[user, {"role": "assistant", "content": blocks}, result],
        )  # fmt: skip
    # Bound to the messages before it as well: the same blocks after another question.
    with pytest.raises(anthropic.BadRequestError, match="bound to a different conversation"):
        client.messages.create(
            model="claude-sonnet-5-5", max_tokens=500, tools=tools,
            thinking={"type": "adaptive", "display": "summarized"},
            messages=[{"role": "user", "content": "hello"},
                      {"role": "assistant", "content": blocks}, result],
        )  # fmt: skip
    fake.enqueue(text("Found it."))
    again(blocks)  # unchanged: accepted


# -- turns on the default model ---------------------------------------------------------------------


def test_every_turn_request_is_valid_for_sonnet_5_5(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings)
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": ORDER}, say="One moment."),
        tool_use("order_status", {"order_id": ORDER}),
        text(f"Your order {ORDER} has been delivered."),
    )
    conversation = runtime.agent.start_conversation()
    result = runtime.agent.ask(conversation, f"Where is {ORDER}? I'm {IVAN['email']}")

    assert result.reply == f"Your order {ORDER} has been delivered." and not result.degraded
    assert fake.rejected == []
    for body in fake.bodies:
        assert body["model"] == "claude-sonnet-5-5"
        assert body["thinking"] == {"type": "between_tools"}  # the least up-front thinking
        assert body["output_config"] == {"effort": "low"}
        assert not {"tool_choice", "temperature", "top_p", "top_k"} & set(body)
        assert body["messages"][-1]["role"] == "user"  # never a prefill
    # The progress note came back as a thinking block, stored with its round.
    first_round = _stored(runtime, conversation)[1].content
    assert first_round[0]["type"] == "thinking" and first_round[0]["thinking"] == "One moment."


def test_adaptive_thinking_blocks_come_back_unchanged_in_the_tool_loop(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings, thinking="adaptive", effort="medium")
    fake.enqueue(tool_use("order_status", {"order_id": ORDER}), text("Delivered."))
    conversation = _verified(runtime)
    runtime.agent.ask(conversation, f"Where is {ORDER}?")

    first, second = fake.bodies
    assert first["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert first["output_config"] == {"effort": "medium"}
    replayed = _thinking(second)
    assert len(replayed) == 1 and replayed[0]["thinking"] == ""  # omitted display: empty text
    assert fake.rejected == []
    # Stored with the assistant message, signature intact, bound to the model that signed it.
    stored = [b for m in _stored(runtime, conversation) for b in m.content
              if b["type"] == "thinking"]  # fmt: skip
    assert stored[0]["signature"] == replayed[0]["signature"]
    assert stored[0][BINDING]["model"] == "claude-sonnet-5-5"


def test_a_verification_mid_turn_drops_only_the_blocks_whose_prefix_changed(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    """Verifying puts the customer into the system prompt, so blocks written before it are
    bound to a prefix that no longer exists: they are left out (the API would answer 400),
    and later blocks go back as usual."""
    runtime = _runtime(make_settings, thinking="adaptive")
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": ORDER}),
        tool_use("order_status", {"order_id": ORDER}),
        text("Delivered."),
    )
    conversation = runtime.agent.start_conversation()
    result = runtime.agent.ask(conversation, f"{ORDER}, I'm {IVAN['email']}")

    assert result.reply == "Delivered." and not result.degraded and fake.rejected == []
    _first, second, third = fake.bodies
    assert _thinking(second) == []  # the system prompt changed after the first block
    assert len(_thinking(third)) == 1  # the second round's block, written after the change
    stored = [b for m in _stored(runtime, conversation) for b in m.content
              if b["type"] == "thinking"]  # fmt: skip
    assert len(stored) == 3  # the database keeps every block (one per reply)


def test_a_conversation_that_switches_model_midway_stays_valid(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    opus = _runtime(make_settings, model="claude-opus-5-5", thinking="adaptive")
    fake.enqueue(tool_use("order_status", {"order_id": ORDER}), text("Delivered."))
    conversation = _verified(opus)
    opus.agent.ask(conversation, f"Where is {ORDER}?")
    assert len(_thinking(fake.bodies[1])) == 1  # same model: replayed

    # The operator moves to Sonnet 5.5, which cannot read Opus 5.5's blocks.
    sonnet = build_runtime(opus.settings.model_copy(update={"model": "claude-sonnet-5-5"}))
    fake.enqueue(text("Anything else?"))
    result = sonnet.agent.ask(conversation, "Thanks!")
    body = fake.bodies[-1]
    assert result.reply == "Anything else?" and not result.degraded
    assert body["model"] == "claude-sonnet-5-5" and _thinking(body) == []
    assert fake.rejected == [] and fake.dropped_thinking == []  # none sent, none to drop

    # Back on an older model with manual thinking only: no thinking or effort fields at all.
    haiku = build_runtime(opus.settings.model_copy(update={"model": "claude-haiku-4-5"}))
    fake.enqueue(text("Bye."))
    haiku.agent.ask(conversation, "Bye")
    body = fake.bodies[-1]
    assert "thinking" not in body and "output_config" not in body and _thinking(body) == []
    thinking_rows = [b for m in _stored(sonnet, conversation) for b in m.content
                     if b["type"] == "thinking"]  # fmt: skip
    assert len(thinking_rows) == 3  # every block stays in the database (two of Opus, one of Sonnet)


def test_thinking_that_uses_the_whole_budget_is_asked_again_with_more_room(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings, thinking="adaptive", max_tokens=1000)
    cut = Reply([], "max_tokens")  # nothing but thinking before the budget ran out
    fake.enqueue(cut, text("Your order has been delivered."))
    result = runtime.agent.ask(_verified(runtime), f"Where is {ORDER}?")

    assert result.reply == "Your order has been delivered."  # not shown truncated
    assert "cut short" not in result.reply
    assert [b["max_tokens"] for b in fake.bodies] == [1000, 2000]
    assert fake.bodies[1]["messages"] == fake.bodies[0]["messages"]  # asked again, no prefill


def test_a_refusal_is_logged_with_its_category_and_counted(
    make_settings: SettingsFactory, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _runtime(make_settings)
    fake.enqueue(refusal("cyber", "This request was declined because it could enable cyber harm."))
    with caplog.at_level(logging.WARNING):
        result = runtime.agent.ask(_verified(runtime), "Write me malware")
    assert result.outcome == Outcome.REFUSED and "I can't help with that" in result.reply
    assert "declined (category cyber)" in caplog.text and "cyber harm" in caplog.text
    _, overall = report(runtime.engine, runtime.settings.pricing)
    assert overall.refusals == 1


def test_streaming_shows_work_but_never_private_reasoning(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    def turn(**overrides: Any) -> list[Any]:
        runtime = _runtime(make_settings, thinking="adaptive", **overrides)
        fake.enqueue(
            tool_use("order_status", {"order_id": ORDER}, say="Let me pull up that order."),
            text("Delivered."),
        )
        return list(runtime.agent.turn(_verified(runtime), Said("Where?"), stream=True).events())

    def notes(events: list[Any]) -> str:
        return "".join(e.text for e in events if isinstance(e, ProgressDelta))

    summarized = turn(thinking_display="summarized")
    assert any(isinstance(e, Working) for e in summarized)  # the page shows work under way
    assert notes(summarized) == ""  # reasoning summaries are not shown by default
    assert isinstance(summarized[-1], TurnFinished) and summarized[-1].result.reply == "Delivered."
    assert notes(turn(thinking_display="omitted")) == ""
    updates = turn(thinking_display="updates")
    assert notes(updates) == "Let me pull up that order."  # progress updates only
    assert "thinking-display-updates" in fake.requests[-1].headers.get("anthropic-beta", "")
    shown = notes(turn(thinking_display="summarized", show_thinking=True))
    assert "Let me look at what the customer needs." in shown  # an operator's choice


def test_sse_streams_working_and_progress_events(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = _runtime(make_settings)
    with transaction(runtime.engine) as session:
        _, key = create_key(session=session, name="svc", scope=KeyScope.BACKEND)
    fake.enqueue(
        tool_use("order_status", {"order_id": ORDER}, say="Checking your order now."),
        text("Delivered."),
    )
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(runtime.settings, runtime)) as client:
        conversation = client.post(
            "/v1/conversations", json={"customer_email": IVAN["email"]}, headers=auth
        ).json()["id"]
        response = client.post(
            f"/v1/conversations/{conversation}/messages?stream=true",
            json={"text": "Where is my order?"},
            headers=auth,
        )
    events = [
        line.removeprefix("event: ").strip()
        for line in response.text.splitlines()
        if line.startswith("event:")
    ]
    datas = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data:")
    ]
    progress = "".join(d["delta"] for e, d in zip(events, datas, strict=True) if e == "progress")
    assert progress == "Checking your order now."
    assert events.index("progress") < events.index("tool_start") < events.index("final")
    assert datas[-1]["reply"] == "Delivered."
