"""Builds the running product from settings: database, models, tools, agent."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from agent import tracing
from agent.adapters.connectors import RemoteOrders
from agent.adapters.order_systems import OrderSystems, order_system
from agent.adapters.sql_turns import SqlTurnStore
from agent.config import Settings, warn_if_deprecated
from agent.engine.loop import Agent
from agent.models.base import Model
from agent.models.claude import ClaudeModel
from agent.models.offline import OfflineModel
from agent.observability import turns
from agent.observability.traced_store import TracedTurnStore
from agent.store.db import make_engine
from kb import KnowledgeBase
from kb.embedder import set_threads
from tools import ToolRegistry, default_registry
from tools.order_system import OrderSystem

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    agent: Agent
    systems: OrderSystems = field(default_factory=OrderSystems)

    @property
    def connector(self) -> RemoteOrders | None:
        """The connector to the shop's own order system; None on the built-in store."""
        return self.systems.remote

    def orders(self, session: Any) -> OrderSystem:
        """The shop's order system, for work on `session` (the built-in store's tables, or the
        connector to the shop's own system)."""
        return self.systems(session)

    @property
    def offline(self) -> bool:
        return self.agent.model.offline


def open_knowledge_base(settings: Settings) -> KnowledgeBase | None:
    """The knowledge base, or None (logged) when its store cannot be reached: the agent then
    answers order questions and says the help centre is unavailable."""
    try:
        return KnowledgeBase.open(settings)
    except Exception:
        log.exception("knowledge base unavailable (%s)", settings.chroma_url or settings.data_dir)
        return None


def build_runtime(settings: Settings, tools: ToolRegistry | None = None) -> Runtime:
    """The running product; `tools` replaces the shipped tools (a shop's own, or a test's)."""
    tracing.configure_from_env()  # traces only where OTEL_EXPORTER_OTLP_*ENDPOINT is set
    set_threads(settings.encoder_threads)  # a command that encodes batches may raise it
    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    systems = order_system(settings)
    tools = tools or default_registry()
    if systems.remote is not None and systems.remote.spec.extra_tools:
        # The shop server's own tools the connector file offers the model (connected now, to
        # read their schemas; a server down at start offers none, logged). The MCP SDK is
        # imported only here and by an MCP connector (~17 MiB, 0.4 s of every start).
        from agent.adapters.connectors.extra_tools import extra_tools

        ours = [t for t in (tools.get(n) for n in tools.names()) if t is not None]
        tools = ToolRegistry([*ours, *extra_tools(systems.remote, set(tools.names()))])
    fallback = OfflineModel(tools)
    model: Model
    summarizer: Model | None = None
    if settings.uses_claude():
        warn_if_deprecated(settings)
        model = ClaudeModel(settings)
        if settings.summary_model and settings.summary_model != settings.model:
            summarizer = ClaudeModel(settings.model_copy(update={"model": settings.summary_model}))
    else:
        log.info("No ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL: running on the offline model")
        model = fallback
    agent = Agent(
        store=TracedTurnStore(
            SqlTurnStore(
                engine,
                lease_seconds=settings.turn_lease_seconds,
                renew_seconds=settings.turn_renew(),
                stall_seconds=settings.turn_stall(),
            )
        ),
        settings=settings,
        model=model,
        fallback=fallback,
        tools=tools,
        kb=open_knowledge_base(settings),
        summarizer=summarizer,
        watch=turns.watcher(settings),
        orders=systems,
    )
    return Runtime(settings=settings, engine=engine, agent=agent, systems=systems)


def needs_warm_up(runtime: Runtime) -> bool:
    """Whether there is anything to load before the first search (an empty or unreachable
    knowledge base has nothing: the encoder then loads with the first ingest)."""
    kb = runtime.agent.kb
    try:
        return kb is not None and kb.store.count() > 0
    except Exception:
        log.exception("knowledge base unavailable while starting")
        return False


def warm_up(runtime: Runtime) -> None:
    """Load what the first turns would otherwise wait for: the query encoder, the vector store
    and the lexical index, with one search. A server reports ready only after this, so the
    first turn after a start costs what later ones do."""
    kb = runtime.agent.kb
    if kb is None:
        return
    try:
        kb.search("warm up", k=1)
    except Exception:
        log.exception("warming the knowledge base up failed; the first search will load it")
