"""Builds the running product from settings: database, models, tools, agent."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine

from agent.config import Settings, warn_if_deprecated
from agent.engine.loop import Agent
from agent.models.base import Model
from agent.models.claude import ClaudeModel
from agent.models.offline import OfflineModel
from agent.store.db import make_engine
from agent.store.turns import SqlTurnStore
from kb import KnowledgeBase
from tools import default_registry

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    agent: Agent

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


def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(settings.resolved_database_url(), settings.db_pool_size)
    tools = default_registry()
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
        store=SqlTurnStore(
            engine,
            lease_seconds=settings.turn_lease_seconds
            or settings.request_timeout * (settings.max_retries + 1) + 15,
        ),
        settings=settings,
        model=model,
        fallback=fallback,
        tools=tools,
        kb=open_knowledge_base(settings),
        summarizer=summarizer,
    )
    return Runtime(settings=settings, engine=engine, agent=agent)
