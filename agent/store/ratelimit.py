"""Fixed-window request counters in the database, so every worker and replica shares them."""

from __future__ import annotations

import time

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from agent.store.tables import RateCounter


def count(session: Session, limits: dict[str, int], window_seconds: int = 60) -> dict[str, int]:
    """Count one request against each key of `limits` (key -> requests allowed per window),
    in the caller's transaction and one statement. Returns the keys over their limit, each
    with the seconds until its window ends (empty when the request is allowed)."""
    if not limits:
        return {}
    now = time.time()
    window = int(now // window_seconds * window_seconds)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(RateCounter)
        .values([{"key": key, "window": window, "count": 1} for key in sorted(limits)])
        .on_conflict_do_update(
            index_elements=["key", "window"],
            set_={"count": RateCounter.count + 1},  # type: ignore[operator]
        )
        .returning(RateCounter.key, RateCounter.count)  # type: ignore[call-overload]
    )
    counts: dict[str, int] = {key: n for key, n in session.execute(statement).all()}
    fresh = [key for key, n in counts.items() if n == 1]
    if fresh:  # first request of a window: forget the old windows of these keys
        session.execute(
            delete(RateCounter).where(
                RateCounter.key.in_(fresh),  # type: ignore[attr-defined]
                RateCounter.window < window,  # type: ignore[arg-type]
            )
        )
    retry = max(1, int(window + window_seconds - now + 0.999))
    return {key: retry for key, n in counts.items() if n > limits[key]}
