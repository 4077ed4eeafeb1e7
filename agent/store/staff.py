"""Staff accounts and their desk sign-ins.

Passwords are stored as salted scrypt hashes (the standard library's: memory-hard, no extra
dependency); sign-in tokens are random and stored as SHA-256, like API keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, false
from sqlmodel import Session, col, select

from agent.errors import Conflict, InvalidInput, NotFound
from agent.store.keys import hash_secret
from agent.store.tables import StaffAccount, StaffSession, utcnow

_N, _R, _P = 2**14, 8, 1  # scrypt's interactive-login parameters (16 MiB, ~50 ms)
MIN_PASSWORD = 10
STAFF_TOKEN_PREFIX = "sbs_"  # desk sign-in tokens; API keys start "sb_<scope>_"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encoded = [base64.b64encode(x).decode() for x in (salt, digest)]
    return f"scrypt${_N}${_R}${_P}${encoded[0]}${encoded[1]}"


def password_matches(stored: str, password: str) -> bool:
    try:
        name, n, r, p, salt, digest = stored.split("$")
        if name != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


# A fixed hash to check against when the username is unknown, so that a wrong username takes
# as long as a wrong password (no way to tell which accounts exist).
_DUMMY = hash_password(secrets.token_urlsafe(16))


def _username(username: str) -> str:
    name = username.strip().lower()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise InvalidInput("A username is 1-64 letters, digits, '.', '_', '-' or '@'.")
    return name


def _display(display_name: str) -> str:
    name = " ".join(display_name.split())
    if not name or len(name) > 100:
        raise InvalidInput("A display name is 1-100 characters.")
    return name


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters.")
    return password


def create_account(
    *, session: Session, username: str, display_name: str, password: str
) -> StaffAccount:
    name = _username(username)
    if session.exec(select(StaffAccount).where(StaffAccount.username == name)).first():
        raise Conflict(f"There is already a staff account named {name!r}.")
    account = StaffAccount(
        username=name,
        display_name=_display(display_name),
        password_hash=hash_password(_password(password)),
    )
    session.add(account)
    session.flush()
    return account


def get_account(*, session: Session, username: str) -> StaffAccount:
    account = session.exec(
        select(StaffAccount).where(StaffAccount.username == username.strip().lower())
    ).first()
    if account is None:
        raise NotFound(f"No staff account named {username!r}.")
    return account


def list_accounts(*, session: Session, include_disabled: bool = False) -> list[StaffAccount]:
    query = select(StaffAccount).order_by(col(StaffAccount.display_name))
    if not include_disabled:
        query = query.where(col(StaffAccount.disabled).is_(false()))
    return list(session.exec(query).all())


def update_account(
    *,
    session: Session,
    username: str,
    display_name: str | None = None,
    password: str | None = None,
    disabled: bool | None = None,
) -> StaffAccount:
    """Change an account; a new password or disabling it also signs it out everywhere."""
    account = get_account(session=session, username=username)
    if display_name is not None:
        account.display_name = _display(display_name)
    if password is not None:
        account.password_hash = hash_password(_password(password))
    if disabled is not None:
        account.disabled = disabled
    session.add(account)
    if password is not None or disabled:
        for row in session.exec(select(StaffSession).where(StaffSession.staff_id == account.id)):
            session.delete(row)
    session.flush()
    return account


def check_password(*, session: Session, username: str, password: str) -> StaffAccount | None:
    """The account, or None for a wrong username or password or a disabled account (the
    caller does not learn which; each takes one scrypt). A read: no write lock is held while
    the hash is computed."""
    account = session.exec(
        select(StaffAccount).where(StaffAccount.username == username.strip().lower()[:64])
    ).first()
    if account is None or account.disabled:
        password_matches(_DUMMY, password)
        return None
    return account if password_matches(account.password_hash, password) else None


def open_session(*, session: Session, staff_id: int, hours: float) -> tuple[str, datetime]:
    """A new sign-in for the account: (its token, shown once; when it expires)."""
    token = f"{STAFF_TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    expires = utcnow() + timedelta(hours=hours)
    session.add(StaffSession(token_hash=hash_secret(token), staff_id=staff_id, expires_at=expires))
    session.flush()
    return token, expires


def sign_out(*, session: Session, token: str) -> None:
    row = session.get(StaffSession, hash_secret(token))
    if row is not None:
        session.delete(row)
        session.flush()


class StaffIdentity(NamedTuple):
    id: int
    username: str
    display_name: str


_ACTIVE = (
    select(col(StaffAccount.id), col(StaffAccount.username), col(StaffAccount.display_name))
    .join(StaffSession, col(StaffSession.staff_id) == col(StaffAccount.id))
    .where(
        col(StaffSession.token_hash) == bindparam("token_hash"),
        col(StaffSession.expires_at) > bindparam("now"),
        col(StaffAccount.disabled).is_(false()),
    )
)


def find_session(*, session: Session, token: str) -> StaffIdentity | None:
    """Who holds this sign-in token, unless it is unknown, expired or the account disabled."""
    row = session.execute(_ACTIVE, {"token_hash": hash_secret(token), "now": utcnow()}).first()
    return StaffIdentity(*row) if row is not None else None
