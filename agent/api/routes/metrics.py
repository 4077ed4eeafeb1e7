"""GET /metrics: Prometheus's text format (agent/observability/metrics.py)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response

from agent.api.deps import AuthorizationHeader, StateDep, get_principal
from agent.api.errors import STAFF, responses
from agent.errors import Forbidden
from agent.observability import metrics
from agent.store.tables import KeyScope

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {}}},
        **responses(*STAFF),
    },
)
async def read_metrics(
    request: Request, state: StateDep, authorization: AuthorizationHeader = None
) -> Response:
    """Turns, model calls, tokens, tools, hand-offs, 429s and open tickets, for Prometheus.
    Open to anyone unless SUPPORTBOT_METRICS_REQUIRE_KEY is set: then only with an admin key."""
    if state.settings.metrics_require_key:
        principal = await anyio.to_thread.run_sync(get_principal, request, state, authorization)
        if principal.scope != KeyScope.ADMIN:
            raise Forbidden(f"This needs an admin key; this key is {principal.scope.value}.")
    registry = metrics.scrape_registry(state.runtime.engine, state.runtime.connector)
    body, content_type = await anyio.to_thread.run_sync(metrics.render, registry)
    return Response(content=body, media_type=content_type)
