"""API keys: random secrets shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

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


def find_key(*, session: Session, secret: str) -> ApiKey | None:
    key = session.exec(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret))).first()
    return key if key is not None and not key.revoked else None


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
