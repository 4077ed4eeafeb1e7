"""The offline model resolves what it promises: the scripted customer conversations of
tests/offline_conversations.yaml (each change, missing details, vague product words, typos,
changes of mind, unverified customers), each on a fresh copy of the test store, end as
expected. bench/offline_conversations.py prints the same as a table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.offline_conversations import Store, scripts
from tools.order_system import CHANGES

pytestmark = pytest.mark.slow

SCRIPTS = scripts()


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    made = Store()
    yield made
    made.close()


def test_there_are_at_least_forty_conversations_covering_every_change() -> None:
    expected = {s["expect"].get("executed") for s in SCRIPTS}
    assert len(SCRIPTS) >= 40
    assert set(CHANGES) <= expected


@pytest.mark.parametrize("script", SCRIPTS, ids=[s["name"] for s in SCRIPTS])
def test_a_scripted_conversation_ends_as_expected(store: Store, script: dict[str, Any]) -> None:
    ran = store.run(script)
    assert ran.problems(script["expect"]) == [], "\n\n".join(ran.replies)
