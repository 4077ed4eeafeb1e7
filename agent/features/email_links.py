"""One-time confirmation links for changes proposed by email: signed (HMAC-SHA256 with
SUPPORTBOT_EMAIL_LINK_SECRET), expiring with the proposal, bound to one action, and used at
most once (the link's row records its use). Opening a link changes nothing: mail scanners
fetch links; only the page's Confirm button (a POST) does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


class LinkRefused(Exception):
    """Why a link does not confirm anything, in the customer's words."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(secret: str, *, link_id: str, action_id: str, expires: float) -> str:
    payload = _b64(json.dumps({"l": link_id, "a": action_id, "e": int(expires)}).encode())
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def read_link(secret: str, token: str, *, action_id: str, now: float | None = None) -> str:
    """The link's id, when `token` is ours, unexpired and for `action_id`; LinkRefused
    otherwise."""
    try:
        payload, signature = token.split(".")
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise LinkRefused("This link is not valid.")
        claims = json.loads(_unb64(payload))
        link_id, action, expires = str(claims["l"]), str(claims["a"]), int(claims["e"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkRefused("This link is not valid.") from exc
    if action != action_id:
        raise LinkRefused("This link is for another change.")
    if expires < (time.time() if now is None else now):
        raise LinkRefused("This link has expired, so the change was not made.")
    return link_id
