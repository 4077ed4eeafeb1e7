"""Shared fixtures: no network, per-test state, the fake Messages API, SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings
from agent.runtime import Runtime, build_runtime
from agent.store.importer import import_path
from kb import KnowledgeBase
from tests.fake_anthropic import FakeAnthropic
from tests.mail_servers import MailServers, start_mail_servers
from tests.postgres import PostgresServer, start_postgres
from tests.shop_server import serve  # noqa: F401  (a fixture: the example shop system as a process)

FIXTURES = Path(__file__).parent / "fixtures"
RETAIL_SLICE = FIXTURES / "retail_slice.json"

# Customers of the retail slice (tests/fixtures/retail_slice.json).
IVAN = {
    "email": "ivan.santos3158@example.com",
    "zip": "75277",
    "orders": ["#W6893533", "#W8770097"],
}
YARA = {"email": "yara.li6570@example.com", "zip": "10126", "orders": ["#W2497857", "#W3400144"]}


def _is_local(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond this machine fails the test loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No operator configuration leaks in; each test has its own working directory."""
    for name in list(os.environ):
        if name.startswith(("SUPPORTBOT_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    fake_server.reset()
    yield fake_server
    left = fake_server.pending
    fake_server.reset()
    assert left == 0, f"{left} scripted replies were never requested"


def started_postgres() -> PostgresServer:
    """A new server, or the test skipped where PostgreSQL is not installed (failed in CI)."""
    server = start_postgres()
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries not found; .ci/run must install Debian's postgresql")
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = started_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    """Dovecot (IMAP, LMTP) and an SMTP server relaying into it (tests/mail_servers.py)."""
    servers = start_mail_servers()
    if servers is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot not found; .ci/run must install Debian's dovecot-imapd")
        pytest.skip("Dovecot not installed (apt-get install dovecot-imapd dovecot-lmtpd)")
    yield servers
    servers.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with server.database(name) as url:
        yield url


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def thinking_mode() -> str:
    """The thinking setting tests run with; modules of Claude paths run under both (see
    ALL_THINKING_MODES)."""
    return "between_tools"


# In a test module: `thinking_mode = ALL_THINKING_MODES` runs its tests under the default
# (no up-front thinking; notes between tools as progress blocks) and under adaptive thinking
# (signed reasoning blocks before every reply, replayed in the tool loop).
ALL_THINKING_MODES = pytest.fixture(params=["between_tools", "adaptive"])(
    lambda request: request.param
)


@pytest.fixture
def make_settings(
    tmp_path: Path, db_url: str, fake: FakeAnthropic, thinking_mode: str
) -> SettingsFactory:
    """Settings pointed at this test's database and the fake Messages API."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": db_url,
            "anthropic_base_url": fake.url,
            "anthropic_api_key": "sk-ant-test",
            "max_retries": 2,
            "thinking": thinking_mode,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def runtime(make_settings: SettingsFactory) -> Runtime:
    """The product wired to Claude (the fake), with the retail slice imported."""
    built = build_runtime(make_settings())
    report = import_path(built.engine, RETAIL_SLICE)
    assert not report.problems
    return built


@pytest.fixture
def offline_runtime(make_settings: SettingsFactory) -> Runtime:
    built = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    import_path(built.engine, RETAIL_SLICE)
    return built


def customer_id(runtime: Runtime, email: str) -> str:
    from agent.store.db import transaction
    from agent.store.orders import find_customer_by_email

    with transaction(runtime.engine) as session:
        customer = find_customer_by_email(session=session, email=email)
        assert customer is not None
        return customer.id


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    """An empty embedded knowledge base in this test's directory."""
    return KnowledgeBase.open(Settings(data_dir=tmp_path / "kbdata"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the browser tests: Debian's Chromium driven by Playwright, and their screenshots ------
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found; .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
