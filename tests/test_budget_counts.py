"""agent.engine.budget's TokenCounter takes a conversation's counts over from request to
request; it must count, and fit_to_budget must trim, as a counter that never saw the
conversation does: over a growing conversation with tool rounds and a photo, older turns cut,
a message replaced by an equal copy and by a different one, and a new system prompt. With the
Token Counting API, the same counts and the same calls to it as walking every message of
every request."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from agent.engine.budget import TokenCounter, fit_to_budget
from agent.models.base import ModelRequest
from agent.models.reuse import Bounded

TOOLS: list[dict[str, Any]] = [{"name": "list_orders", "input_schema": {"type": "object"}}]
SYSTEM = "You help the customers of a shop."
PHOTO = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
BUDGET = 2_500  # tokens: the conversation below outgrows it after some ten turns


def _user(text: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": [*blocks, {"type": "text", "text": text}]}


def _turn(n: int) -> list[dict[str, Any]]:
    """A tool round and the answer after turn `n`'s question."""
    call = {"type": "tool_use", "id": f"t{n}", "name": "list_orders", "input": {"limit": n}}
    result = {"type": "tool_result", "tool_use_id": f"t{n}", "content": "three orders " * 20}
    return [
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}, call]},
        {"role": "user", "content": [result]},
        {"role": "assistant", "content": [{"type": "text", "text": f"Answer {n}. " * 15}]},
    ]


def _requests() -> Iterator[ModelRequest]:
    """A conversation's requests, in order: each carries the same message objects as the last,
    the newest ones as copies (as the engine's are, before the stored ones replace them)."""
    history: list[dict[str, Any]] = [_user("hello, about my kettle", PHOTO)]
    for n in range(30):
        yield ModelRequest(system=SYSTEM, messages=list(history), tools=TOOLS, max_tokens=100)
        round_ = _turn(n)
        yield ModelRequest(
            system=SYSTEM, messages=[*history, *map(dict, round_[:2])], tools=TOOLS, max_tokens=100
        )
        history += [*round_, _user(f"and question {n}?")]
        if n == 12:  # a message in the middle replaced by an equal copy, then by another
            history[5] = dict(history[5])
        if n == 16:
            history[5] = {"role": "user", "content": [{"type": "text", "text": "changed"}]}
    later = "You help the customers of a shop. The customer is verified."
    yield ModelRequest(system=later, messages=list(history), tools=TOOLS, max_tokens=100)


def _trimmed(
    requests: list[ModelRequest], counter: Callable[[], TokenCounter]
) -> Iterator[tuple[int, list[dict[str, Any]], int]]:
    """(the request's count, its messages as fitted, the cut) for each request in turn."""
    cut = 0
    for request in requests:
        tokens = counter().count(request)
        fitted, cut = fit_to_budget(request, BUDGET, counter(), previous_cut=cut)
        yield tokens, fitted.messages, cut


def test_a_counter_that_remembers_counts_and_trims_as_a_new_one() -> None:
    requests = list(_requests())
    kept = TokenCounter()
    remembered = list(_trimmed(requests, lambda: kept))
    afresh = list(_trimmed(requests, TokenCounter))
    assert remembered == afresh
    cuts = {cut for _, _, cut in afresh}
    assert len(cuts) >= 3  # older turns were cut, more than once
    photo_left = [json.dumps(messages).count('"image"') for _, messages, _ in afresh]
    assert photo_left[0] == 1 and photo_left[-1] == 0  # the photo gave way


def test_with_the_token_counting_api_the_same_counts_and_calls() -> None:
    requests = list(_requests())

    def trimmed(counter: TokenCounter) -> tuple[list[Any], list[int]]:
        calls: list[int] = []

        def exact(request: ModelRequest) -> int:
            calls.append(len(request.messages))
            return len(json.dumps([request.system, request.messages])) // 3

        counter.exact = exact
        return list(_trimmed(requests, lambda: counter)), calls

    remembering = TokenCounter()
    walking = TokenCounter()
    walking._runs = Bounded(0, 0)  # every request's messages walked, none taken over
    assert trimmed(remembering) == trimmed(walking)
    assert remembering.chars_per_token == walking.chars_per_token != 3.5  # calibrated alike
