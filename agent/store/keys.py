"""API keys: random secrets shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

from sqlalchemy import bindparam, false
from sqlmodel import Session, col, select

from agent.store.tables import ApiKey, KeyScope


def hash_secret(secret: str) -> str:
    # Keys are 256-bit random, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(*, session: Session, name: str, scope: KeyScope) -> tuple[ApiKey, str]:
    """The stored key and its secret (the only time the secret exists in clear)."""
    secret = f"sb_{scope.value}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, scope=scope, prefix=secret[:14], secret_hash=hash_secret(secret))
    session.add(key)
    session.flush()
    return key, secret


class KeyIdentity(NamedTuple):
    id: int
    name: str
    scope: KeyScope


# Read on every request: one prebuilt statement, no ORM objects.
_ACTIVE = select(col(ApiKey.id), col(ApiKey.name), col(ApiKey.scope)).where(
    col(ApiKey.secret_hash) == bindparam("secret_hash"), col(ApiKey.revoked).is_(false())
)


def find_key(*, session: Session, secret: str) -> KeyIdentity | None:
    """The key with this secret, unless it is unknown or revoked."""
    row = session.execute(_ACTIVE, {"secret_hash": hash_secret(secret)}).first()
    return KeyIdentity(*row) if row is not None else None


def list_keys(*, session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(col(ApiKey.id))).all())


def revoke_key(*, session: Session, key_id: int) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None:
        return False
    key.revoked = True
    session.add(key)
    session.flush()
    return True
