"""Customer identity tokens signed by the shop's site (HMAC-SHA256 with a shared secret).

A token is `base64url(payload) + "." + base64url(signature)`, the payload being JSON
`{"sub": "<customer email or id>", "exp": <unix seconds>}`. The shop mints one for a logged-in
customer and hands it to the web chat; supportbot then binds the conversation to that customer
without asking them to verify again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from agent.errors import Unauthorized


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_customer_token(secret: str, subject: str, ttl_seconds: int = 900) -> str:
    """What the shop's site does (see the README for the same in ten lines)."""
    payload = _b64(json.dumps({"sub": subject, "exp": int(time.time()) + ttl_seconds}).encode())
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify_customer_token(secret: str, token: str, *, max_ttl_seconds: int = 3600) -> str:
    """The token's subject; Unauthorized when it is forged, malformed or expired."""
    try:
        payload, signature = token.split(".")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise Unauthorized("The customer token's signature is invalid.")
        claims: dict[str, Any] = json.loads(_unb64(payload))
        subject, expires = str(claims["sub"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthorized("The customer token is malformed.") from exc
    now = time.time()
    if expires < now:
        raise Unauthorized("The customer token has expired.")
    if expires > now + max_ttl_seconds:
        raise Unauthorized("The customer token lives too long; mint short-lived tokens.")
    return subject
