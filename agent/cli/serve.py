"""`supportbot serve` and `supportbot keys`."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from agent.cli.common import console, fail, load_settings
from agent.store.scopes import KeyScope

if TYPE_CHECKING:
    from agent.config import Settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
) -> None:
    """Serve the HTTP API, the web chat and the staff desk.

    The chat is at /, the desk at /staff and the API's docs at /docs. An address that cannot
    be listened on (a port in use) is reported before anything starts, with exit code 1.
    """
    import uvicorn

    from agent.config import warn_if_deprecated
    from agent.errors import SupportbotError
    from agent.models.claude import check_provider

    settings = load_settings()
    try:  # a missing model id, region or credential is reported now, not on the first turn
        check_provider(settings)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    warn_if_deprecated(settings)
    _check_port(host, port)
    encoder = _start_encoder(settings)
    console.print(f"supportbot on http://{host}:{port}  (API docs: /docs, staff: /staff)")
    try:
        uvicorn.run(
            "agent.api.main:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            # Forwarded headers count only from the proxies the settings name (SUPPORTBOT_
            # TRUSTED_PROXIES); agent.api.deps.client_address reads them the same way.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        )
    finally:
        if encoder is not None:
            from kb.encoder_process import stop

            stop(*encoder)


def _start_encoder(settings: Settings) -> tuple[subprocess.Popen[bytes], str] | None:
    """The query encoder's process, shared by the workers (kb.encoder_process): its address
    goes to them in SUPPORTBOT_ENCODER_SOCKET. None when the settings keep the encoder in each
    worker (SUPPORTBOT_ENCODER_PROCESS=false, or the torch encoder)."""
    if not settings.encoder_process or settings.encoder == "torch" or settings.encoder_socket:
        return None
    from kb.encoder_process import start

    try:
        process, address = start(backend=settings.encoder, threads=settings.encoder_threads,
                                 cache_dir=settings.encoder_cache,
                                 data_dir=settings.data_dir)  # fmt: skip
    except (OSError, RuntimeError) as exc:  # each worker loads the model itself, as before
        console.print(f"the encoder process did not start ({exc}); each worker loads the model")
        return None
    os.environ["SUPPORTBOT_ENCODER_SOCKET"] = address  # read by the workers' Settings
    return process, address


def _check_port(host: str, port: int) -> None:
    """Say plainly, before anything starts, that the address cannot be listened on (taken,
    or not this machine's), and exit 1; uvicorn would print the URL first and then fail."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise fail(f"cannot listen on {host}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise fail(f"port {port} on {host} is already in use (another supportbot or "
                           "another program is listening there); stop it, or choose another "
                           "port with --port") from exc  # fmt: skip
            raise fail(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@keys_app.command("create")
def create(
    scope: Annotated[KeyScope, typer.Option(help="What it may do: admin, backend or widget.")],
    name: Annotated[str, typer.Option(help="Who uses it (staff name, service name).")],
) -> None:
    """Create an API key and print its secret, once.

    Only the secret's SHA-256 is stored: it cannot be shown again.
    """
    from agent.store.db import make_engine, transaction
    from agent.store.keys import create_key

    settings = load_settings()
    with transaction(make_engine(settings.resolved_database_url())) as session:
        key, secret = create_key(session=session, name=name, scope=scope)
    console.print(f"key {key.id} ({scope.value}, {name}):", style="dim", soft_wrap=True)
    print(secret)


@keys_app.command("list")
def list_() -> None:
    """List the API keys, by their prefixes."""
    from agent.store.db import make_engine, transaction
    from agent.store.keys import list_keys

    settings = load_settings()
    with transaction(make_engine(settings.resolved_database_url())) as session:
        keys = list_keys(session=session)
    table = Table("id", "name", "scope", "prefix", "revoked")
    for k in keys:
        table.add_row(str(k.id), k.name, k.scope.value, k.prefix, "yes" if k.revoked else "")
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id from `keys list`.")]) -> None:
    """Revoke an API key: it stops working at once."""
    from agent.store.db import make_engine, transaction
    from agent.store.keys import revoke_key

    settings = load_settings()
    with transaction(make_engine(settings.resolved_database_url())) as session:
        if not revoke_key(session=session, key_id=key_id):
            raise fail(f"no key with id {key_id}")
    console.print(f"revoked key {key_id}")
