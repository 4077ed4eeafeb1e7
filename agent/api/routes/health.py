"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from agent.api.deps import StateDep
from agent.config import model_lifecycle

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _checks(state: StateDep) -> dict[str, Any]:
    checks: dict[str, Any] = {"warm": {"ok": state.warmed.is_set()}}  # see runtime.warm_up
    try:
        with state.runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    kb = state.runtime.agent.kb
    try:
        checks["knowledge_base"] = {"ok": kb is not None, "chunks": kb.store.count() if kb else 0}
    except Exception as exc:
        checks["knowledge_base"] = {"ok": False, "error": type(exc).__name__}
    connector = state.runtime.connector
    if connector is not None:
        # Ready whatever its state: the agent tells customers it cannot reach the order
        # system and offers a person. This says what the breaker sees, for the operator.
        checks["order_system"] = {"ok": True, **connector.health()}
    model = state.runtime.agent.model
    life = {} if model.offline else model_lifecycle(model.name)
    checks["model"] = {
        "ok": True,
        "name": model.name,
        "offline": model.offline,
        "deprecated": life.get("deprecated"),
        "retired": life.get("retired", False),
    }
    if life.get("retired"):
        # Still ready: the offline model answers. The warning is for the operator.
        checks["model"]["warning"] = (
            f"{model.name} was retired on {life['retires']}; its requests fail and turns are "
            "answered offline. Set SUPPORTBOT_MODEL to a current model."
        )
    elif life.get("deprecated"):
        checks["model"]["warning"] = f"{model.name} reaches end of life on {life['deprecated']}."
    return checks


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, dict[str, Any]] = Field(description="database, knowledge_base, model")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Not ready: a check failed"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Database, knowledge base and model configuration checked, and the query encoder and
    indexes loaded (`warm`, shortly after start); 503 while one is not ready."""
    checks = await anyio.to_thread.run_sync(_checks, state)
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
