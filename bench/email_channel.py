"""Email handled end to end, against real mail servers: messages per second, and the server's
CPU per message beside a chat turn's.

    python bench/email_channel.py --messages 200 [--senders 10]

Dovecot (IMAP, LMTP) and the SMTP relay run in a process of their own, the fake Messages API
(answering at once: 0 ms) in another, so this process's CPU is supportbot's alone. The
messages are delivered into the shop's mailbox first; then, timed, supportbot fetches them
over IMAP (STARTTLS), processes each as a customer turn (parse, clean, thread, the turn, the
reply queued) and sends the replies over SMTP (STARTTLS, AUTH). A chat turn for comparison is
`Agent.ask` on the same database and fake (no HTTP), as bench/turn_cost.py measures it.
Needs Debian's dovecot-imapd and dovecot-lmtpd.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.email.inbound import ImapInbound
from agent.email.outbox import OutboxSender
from agent.email.process import Processor
from agent.email.service import email_runtime
from agent.store.importer import import_path
from bench.common import start_fake_process
from tests.email_rig import mail_settings
from tests.fake_anthropic import Reply, text
from tests.mail_servers import start_mail_servers

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "fixtures" / "retail_slice.json"


def reply(body: dict[str, Any]) -> Reply:
    return text("Our return window is 30 days from delivery; the label is free.")


def _serve_mail(queue: Any, stop: Any, users: list[str]) -> None:
    servers = start_mail_servers()
    if servers is None:
        queue.put(None)
        return
    servers.dovecot.add_user(*users)
    for user in users:
        servers.dovecot.wait_for_user(user)
    queue.put({"dovecot_root": str(servers.dovecot.root), "imap": servers.dovecot.imap_port,
               "lmtp": servers.dovecot.lmtp_port, "smtp": servers.smtp.port})  # fmt: skip
    stop.wait()
    servers.stop()


class _Remote:
    """The mail servers of the child process, as tests.email_rig.mail_settings reads them."""

    def __init__(self, info: dict[str, Any]) -> None:
        root = Path(info["dovecot_root"])

        class Dovecot:
            imap_port = info["imap"]
            lmtp_port = info["lmtp"]
            ca_file = root / "tls" / "cert.pem"

        class Smtp:
            port = info["smtp"]

        self.dovecot, self.smtp = Dovecot(), Smtp()


def _deliver(lmtp_port: int, shop: str, senders: list[str], n: int) -> None:
    import smtplib

    with smtplib.LMTP("127.0.0.1", lmtp_port) as lmtp:
        for i in range(n):
            sender = senders[i % len(senders)]
            message = EmailMessage()
            message["From"], message["To"] = sender, shop
            message["Subject"] = f"Returns question {i}"
            message["Message-ID"] = make_msgid(domain="example.net")
            message.set_content(
                f"Hello,\n\nhow long do I have to return my kettle? ({i})\n\nThanks,\nSam\n\n"
                "On Mon, 30 Nov 2026, Acme Support wrote:\n> Earlier answer.\n"
            )
            lmtp.sendmail(sender, [shop], message.as_bytes())


def _timed(label: str, work: Any, results: dict[str, tuple[float, float]]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    value = work()
    results[label] = (time.perf_counter() - wall, time.process_time() - cpu)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--senders", type=int, default=10)
    args = parser.parse_args()
    shop = f"shop-{uuid.uuid4().hex[:8]}@shop.test"
    senders = [f"customer{i}@example.net" for i in range(args.senders)]
    queue: Any = multiprocessing.Queue()
    stop = multiprocessing.Event()
    child = multiprocessing.Process(target=_serve_mail, args=(queue, stop, [shop, *senders]),
                                    daemon=True)  # fmt: skip
    child.start()
    info = queue.get(timeout=120)
    if info is None:
        sys.exit("Dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)")
    try:
        url = start_fake_process(reply)
        folder = Path(tempfile.mkdtemp(prefix="supportbot-email-bench-"))
        values = mail_settings(_Remote(info), shop, email_rate_limit_per_sender=10**6)  # type: ignore[arg-type]
        settings = Settings(data_dir=folder, anthropic_base_url=url, anthropic_api_key="sk-b",
                            **values)  # fmt: skip
        runtime = email_runtime(settings)
        import_path(runtime.engine, SLICE)
        inbound = ImapInbound(settings, runtime.engine)
        processor = Processor(runtime)
        outbox = OutboxSender(settings, runtime.engine)
        # Warm up: a few messages through every stage (imports, connections, the SDK).
        _deliver(info["lmtp"], shop, senders, 5)
        inbound.fetch_once(), processor.process_pending(), outbox.send_pending()

        _deliver(info["lmtp"], shop, senders, args.messages)
        results: dict[str, tuple[float, float]] = {}
        fetched = _timed("fetch (IMAP)", inbound.fetch_once, results)
        processed = _timed("process (parse, clean, thread, turn, queue)",
                           processor.process_pending, results)  # fmt: skip
        sent = _timed("send (SMTP)", outbox.send_pending, results)
        assert fetched == processed == sent == args.messages, (fetched, processed, sent)

        agent = runtime.agent
        chat: dict[str, tuple[float, float]] = {}

        def chat_turns() -> None:
            for i in range(args.messages):
                conversation = agent.start_conversation(channel="widget")
                agent.ask(conversation, f"how long do I have to return my kettle? ({i})")

        _timed("chat turn (Agent.ask)", chat_turns, chat)
    finally:
        stop.set()
        child.join(timeout=60)

    n = args.messages
    wall = sum(w for w, _ in results.values())
    cpu = sum(c for _, c in results.values())
    print(f"{n} messages from {args.senders} senders, fake model at 0 ms\n")
    print("| stage | wall s | CPU ms/message |\n|---|---|---|")
    for label, (w, c) in results.items():
        print(f"| {label} | {w:.2f} | {c / n * 1000:.2f} |")
    print(f"| **email, end to end** | {wall:.2f} | {cpu / n * 1000:.2f} |")
    w, c = chat["chat turn (Agent.ask)"]
    print(f"| chat turn (Agent.ask, no HTTP) | {w:.2f} | {c / n * 1000:.2f} |")
    print(f"\nemail: {n / wall:.1f} messages/s end to end; {cpu / c:.2f}x a chat turn's CPU")


if __name__ == "__main__":
    main()
