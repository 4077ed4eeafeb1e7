"""Runs the scripted conversations of tests/offline_conversations.yaml with the offline model,
each on a fresh copy of the test store: what the suite checks and bench/offline_conversations.py
tabulates."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.config import Settings
from agent.engine.events import Outcome
from agent.runtime import build_runtime
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.orders import find_customer_by_email
from ingest.pipeline import ingest
from kb import KnowledgeBase

HERE = Path(__file__).parent
SCRIPTS = HERE / "offline_conversations.yaml"
STORE = (HERE / "fixtures/retail_slice.json", HERE / "fixtures/retail_catalog.json")
HELP_CENTRE = HERE.parent / "demo/docs"  # for conversations with `help_centre: true`
CUSTOMERS = {
    "ivan": "ivan.santos3158@example.com",
    "anya": "anya.garcia2061@example.com",
    "aarav": "aarav.anderson9752@example.com",
    "yara": "yara.li6570@example.com",
}


def scripts() -> list[dict[str, Any]]:
    return list(yaml.safe_load(SCRIPTS.read_text(encoding="utf-8")))


@dataclass
class Ran:
    """What a conversation came to."""

    replies: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)  # changes carried out, in order
    proposed: str | None = None  # the change waiting at the end
    handed_off: bool = False

    @property
    def outcome(self) -> str:
        if self.handed_off:
            return "handed to a person"
        if self.executed:
            return f"executed {self.executed[-1]}"
        if self.proposed:
            return f"proposed {self.proposed}"
        return "no change"

    def problems(self, expect: dict[str, Any]) -> list[str]:
        """What differs from `expect` (empty: as expected)."""
        found = []
        last = self.replies[-1] if self.replies else ""
        if "executed" in expect and (self.executed[-1:] != [expect["executed"]]):
            found.append(f"expected {expect['executed']} executed, got {self.outcome}")
        if "proposed" in expect and self.proposed != expect["proposed"]:
            found.append(f"expected {expect['proposed']} proposed, got {self.outcome}")
        if expect.get("nothing") and (self.executed or self.proposed or self.handed_off):
            found.append(f"expected no change, got {self.outcome}")
        if expect.get("handed_off") and not self.handed_off:
            found.append(f"expected a hand-off, got {self.outcome}")
        for words in expect.get("reply", []):
            if words.lower() not in last.lower():
                found.append(f"the last reply lacks {words!r}")
        for words in expect.get("not", []):
            if words.lower() in last.lower():
                found.append(f"the last reply says {words!r}")
        return found


class Store:
    """The test store imported once; each conversation gets a copy of its database (and of
    the demo help centre's index, ingested once, when it has `help_centre: true`)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="offline-conversations-"))
        self.template = self.dir / "template.db"
        engine = make_engine(f"sqlite:///{self.template}")
        for path in STORE:
            import_path(engine, path)
        engine.dispose()
        self.count = 0
        self.help_centre: Path | None = None

    def _help_centre(self) -> Path:
        """The demo help centre's index, made the first time a conversation needs it."""
        if self.help_centre is None:
            folder = self.dir / "help-centre"
            kb = KnowledgeBase.open(Settings(data_dir=folder))
            report = ingest(kb, [HELP_CENTRE])
            assert report.ok, report.errors
            self.help_centre = folder / "chroma"
        return self.help_centre

    def run(self, script: dict[str, Any]) -> Ran:
        self.count += 1
        here = self.dir / f"c{self.count}"
        here.mkdir()
        shutil.copy(self.template, here / "store.db")
        if script.get("help_centre"):
            shutil.copytree(self._help_centre(), here / "chroma")
        settings = Settings(data_dir=here, database_url=f"sqlite:///{here / 'store.db'}",
                            anthropic_api_key=None, anthropic_base_url=None)  # fmt: skip
        runtime = build_runtime(settings)
        try:
            return _converse(runtime, script)
        finally:
            runtime.engine.dispose()

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _converse(runtime: Any, script: dict[str, Any]) -> Ran:
    agent = runtime.agent
    customer = None
    if script.get("customer"):
        with transaction(runtime.engine) as session:
            found = find_customer_by_email(session=session, email=CUSTOMERS[script["customer"]])
            assert found is not None
            customer = found.id
    conversation = agent.start_conversation(customer_id=customer)
    ran = Ran()
    for words in script["say"]:
        result = agent.ask(conversation, words)
        ran.replies.append(result.reply)
        if result.settled is not None and result.settled[1].status == "executed":
            ran.executed.append(result.settled[0].tool)
        ran.proposed = result.pending_action.tool if result.pending_action else None
        ran.handed_off = ran.handed_off or result.outcome == Outcome.HANDED_OFF
    return ran
