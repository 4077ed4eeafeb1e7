"""python -m examples.tau2_shop {mcp,rest} --db PATH [options]  (from the project root).

    mcp  [--transport stdio|http] [--host H] [--port N] [--token T] [--json-response]
    rest [--host H] [--port N] [--token T]

Both take --db PATH (the server's own database; env TAU2_SHOP_DB), --seed PATH (what a missing
--db is copied from; τ²-bench's retail db.json of shared/ by default) and --log-level. The token
(or env TAU2_SHOP_TOKEN) makes every HTTP request need `Authorization: Bearer <token>`. Logs go
to stderr; in stdio mode stdout carries nothing but the protocol.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from examples.tau2_shop.runtime import Faults, configure_logging
from examples.tau2_shop.store import DEFAULT_SEED, Store

log = logging.getLogger("tau2_shop")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=os.environ.get("TAU2_SHOP_DB"),
        help="the server's own database file, created from --seed if missing (env TAU2_SHOP_DB)",
    )
    common.add_argument("--seed", default=str(DEFAULT_SEED), help="default: %(default)s")
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, default=8765)
    common.add_argument(
        "--token",
        default=os.environ.get("TAU2_SHOP_TOKEN") or None,
        help="HTTP requests must carry 'Authorization: Bearer <token>' (env TAU2_SHOP_TOKEN)",
    )
    common.add_argument("--log-level", default="INFO")

    parser = argparse.ArgumentParser(
        prog="python -m examples.tau2_shop",
        description="A τ²-bench retail shop as its own process: MCP or REST.",
    )
    faces = parser.add_subparsers(dest="face", required=True)
    mcp = faces.add_parser(
        "mcp", parents=[common], help="the MCP server (stdio or Streamable HTTP)"
    )
    mcp.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    mcp.add_argument(
        "--json-response",
        action="store_true",
        help="HTTP: answer each request with one JSON body rather than an SSE stream",
    )
    faces.add_parser("rest", parents=[common], help="the REST JSON API")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    if not args.db:
        log.error("--db PATH is required (or TAU2_SHOP_DB)")
        return 2
    store = Store(args.db, seed=args.seed)
    faults = Faults.from_env()
    log.info("database %s; faults: %s", store.path, faults.describe())

    if args.face == "rest":
        from examples.tau2_shop import rest_server

        rest_server.run(
            store,
            faults,
            host=args.host,
            port=args.port,
            token=args.token,
            log_level=args.log_level,
        )
        return 0

    from examples.tau2_shop import mcp_server

    server = mcp_server.build_server(store, faults)
    if args.transport == "stdio":
        mcp_server.run_stdio(server)
    else:
        mcp_server.run_http(
            server,
            host=args.host,
            port=args.port,
            token=args.token,
            json_response=args.json_response,
            log_level=args.log_level,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
