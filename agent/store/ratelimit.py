"""Fixed-window request counters in the database, so every worker and replica shares them."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from agent.store.db import transaction
from agent.store.tables import RateCounter


def hit(engine: Engine, *, key: str, limit: int, window_seconds: int = 60) -> int | None:
    """Count one request for `key`; None when allowed, else seconds until the window ends."""
    now = time.time()
    window = int(now // window_seconds * window_seconds)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(RateCounter)
        .values(key=key, window=window, count=1)
        .on_conflict_do_update(
            index_elements=["key", "window"],
            set_={"count": RateCounter.count + 1},  # type: ignore[operator]
        )
        .returning(RateCounter.count)  # type: ignore[call-overload]
    )
    with transaction(engine) as session:
        count = session.execute(statement).scalar_one()
        if count == 1:  # first request of a window: forget old windows of this key
            session.execute(
                delete(RateCounter).where(RateCounter.key == key, RateCounter.window < window)  # type: ignore[arg-type]
            )
    if count <= limit:
        return None
    return max(1, int(window + window_seconds - now + 0.999))
