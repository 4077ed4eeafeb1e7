"""Real mail servers for the test session, started like PostgreSQL: Debian's Dovecot (IMAP and
LMTP, run as an unprivileged process from a config written in a temporary directory, users in
a passwd-file, maildirs beside it) and an SMTP server (aiosmtpd, STARTTLS and AUTH) that
delivers every message it accepts into Dovecot over LMTP. So a test delivers a customer's
mail to the shop's mailbox over LMTP, supportbot reads it over IMAP and answers over SMTP, and
the test reads the answer back from the customer's mailbox over IMAP."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

PASSWORD = "mail-test-password"
SMTP_USER, SMTP_PASSWORD = "supportbot", "smtp-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot",) if Path(p).exists()), None
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{root}/mail/%Lu
auth_username_format = %Lu
auth_mechanisms = plain login
disable_plaintext_auth = no
ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
ssl_min_protocol = TLSv1.2
lmtp_save_to_detail_mailbox = no
recipient_delimiter =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {root}/passwd
  default_fields = uid={uid} gid={gid} home={root}/home/%Lu
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


def make_certificate(directory: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost (cert.pem, key.pem); returns the
    certificate, which clients trust as their CA."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return directory / "cert.pem"


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int
    lmtp_port: int
    as_user: list[str]
    owner: tuple[int, int]
    process: subprocess.Popen[bytes] | None = None
    users: set[str] = field(default_factory=set)

    @property
    def ca_file(self) -> Path:
        return self.root / "tls" / "cert.pem"

    def start(self, timeout: float = 30.0) -> None:
        binary = dovecot_binary()
        assert binary is not None
        self.process = subprocess.Popen(
            [*self.as_user, binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()[-3000:]}")
            if all(_listening(p) for p in (self.imap_port, self.imaps_port, self.lmtp_port)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"dovecot did not start: {self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        binary = dovecot_binary()
        subprocess.run(
            [*self.as_user, str(binary), "-c", str(self.root / "dovecot.conf"), "stop"],
            capture_output=True,
        )
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _listening(self.imap_port):
            time.sleep(0.1)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self, *addresses: str) -> str:
        """A mailbox for each address (its IMAP login; the password is PASSWORD). Dovecot
        reads the passwd-file again when it changes, checking at most once a second: a user
        added just now may be refused for a moment (see `_retrying`)."""
        new = {a.lower() for a in addresses} - self.users
        if new:
            self.users |= new
            lines = "".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in sorted(self.users))
            passwd = self.root / "passwd.new"
            passwd.write_text(lines)
            os.chown(passwd, *self.owner)
            passwd.replace(self.root / "passwd")
        return addresses[0].lower() if addresses else ""

    def wait_for_user(self, address: str, timeout: float = 10.0) -> None:
        """Until Dovecot knows a user just added (it rereads the passwd-file within a second)."""
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        self.add_user(address)
        deadline = time.monotonic() + timeout
        while True:
            with IMAPClient("127.0.0.1", port=self.imap_port, ssl=False, timeout=30) as client:
                try:
                    client.login(address, PASSWORD)
                    return
                except LoginError:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.2)

    def deliver(self, raw: bytes | EmailMessage, to: str, sender: str = "") -> None:
        """Deliver a message into `to`'s INBOX over LMTP, as a mail server would."""
        data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
        self.add_user(to)
        self.lmtp_send(sender or "sender@example.net", [to], data)

    def lmtp_send(self, sender: str, recipients: list[str], data: bytes) -> None:
        self.add_user(*recipients)
        for attempt in range(5):
            try:
                with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=30) as lmtp:
                    lmtp.sendmail(sender, recipients, data)
                return
            except smtplib.SMTPRecipientsRefused:  # a user added within the last second
                if attempt == 4:
                    raise
                time.sleep(0.5)

    def messages(self, address: str, folder: str = "INBOX") -> list[bytes]:
        """Every message in `address`'s folder, oldest first, read over IMAP (STARTTLS)."""
        from imapclient import IMAPClient
        from imapclient.exceptions import LoginError

        self.add_user(address)
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with IMAPClient("127.0.0.1", port=self.imap_port, ssl=False, timeout=30) as client:
            client.starttls(context)
            for attempt in range(5):
                try:
                    client.login(address, PASSWORD)
                    break
                except LoginError:  # a user added within the last second
                    if attempt == 4:
                        raise
                    time.sleep(0.5)
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["RFC822"]) if uids else {}
            return [fetched[u][b"RFC822"] for u in sorted(fetched)]

    def clear(self, address: str) -> None:
        """Empty `address`'s mailbox (every folder)."""
        shutil.rmtree(self.root / "mail" / address.lower(), ignore_errors=True)


def start_dovecot() -> Dovecot | None:
    """A private Dovecot on free loopback ports, or None when Dovecot is not installed."""
    if dovecot_binary() is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="supportbot-dovecot-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # run it as Debian's unprivileged `dovecot` user
        account = pwd.getpwnam("dovecot")
        owner = (account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "dovecot", "--"]
        user, group = "dovecot", "dovecot"
    else:
        account = pwd.getpwuid(os.geteuid())
        owner = (account.pw_uid, account.pw_gid)
        user = account.pw_name
        import grp

        group = grp.getgrgid(account.pw_gid).gr_name
    make_certificate(root / "tls")
    for name in ("run", "state", "mail", "home"):
        (root / name).mkdir()
    server = Dovecot(root, free_port(), free_port(), free_port(), as_user, owner)
    (root / "dovecot.conf").write_text(
        CONFIG.format(
            root=root,
            user=user,
            group=group,
            uid=owner[0],
            gid=owner[1],
            imap_port=server.imap_port,
            imaps_port=server.imaps_port,
            lmtp_port=server.lmtp_port,
        )
    )
    (root / "passwd").write_text("")
    for path in [root, *root.rglob("*")]:
        os.chown(path, *owner)
    server.start()
    return server


class _Relay:
    """aiosmtpd handler: accept a message and deliver it into Dovecot over LMTP."""

    def __init__(self, dovecot: Dovecot) -> None:
        self.dovecot = dovecot
        self.accepted: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        await asyncio.to_thread(
            self.dovecot.lmtp_send, envelope.mail_from, list(envelope.rcpt_tos), data
        )
        with self.lock:
            self.accepted.append((envelope.mail_from, list(envelope.rcpt_tos), data))
        return "250 OK delivered"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (
        isinstance(data, LoginPassword)
        and data.login == SMTP_USER.encode()
        and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpRelay:
    """The shop's outgoing mail server: STARTTLS, AUTH (SMTP_USER / SMTP_PASSWORD)."""

    dovecot: Dovecot
    port: int
    handler: _Relay
    controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(
            self.dovecot.root / "tls" / "cert.pem", self.dovecot.root / "tls" / "key.pem"
        )
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=_authenticate,
            auth_required=True,
            ready_timeout=30,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def accepted(self) -> list[tuple[str, list[str], bytes]]:
        with self.handler.lock:
            return list(self.handler.accepted)


@dataclass
class MailServers:
    dovecot: Dovecot
    smtp: SmtpRelay

    def stop(self) -> None:
        self.smtp.stop()
        self.dovecot.stop()
        shutil.rmtree(self.dovecot.root, ignore_errors=True)


def start_mail_servers() -> MailServers | None:
    dovecot = start_dovecot()
    if dovecot is None:
        return None
    smtp = SmtpRelay(dovecot, free_port(), _Relay(dovecot))
    smtp.start()
    return MailServers(dovecot, smtp)
