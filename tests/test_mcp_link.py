"""McpLink (agent.adapters.connectors.mcp_link) against a real MCP server (the SDK's MCPServer)
run as a process: over stdio, and over Streamable HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.adapters.connectors.mcp_link import (
    AnswerTooLarge,
    CallAnswer,
    LinkDown,
    McpLink,
    McpServerSpec,
    OutcomeUnknown,
)

pytestmark = pytest.mark.slow  # each server start imports the SDK (~0.4 s); ~25 s in all

SERVER = r'''
import os
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

app = MCPServer("testshop")


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Says the text back."""
    return text


@app.tool()
def add(a: int, b: int) -> int:
    return a + b


@app.tool()
def fail() -> str:
    raise ToolError("out of stock")


@app.tool()
async def slow(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "slept"


@app.tool()
def die() -> str:
    os._exit(1)


@app.tool()
def big() -> str:
    return "x" * 2_000_000


@app.tool()
def pid() -> int:
    return os.getpid()


@app.tool()
def where() -> dict[str, str]:
    return {"cwd": os.getcwd(), "greeting": os.environ.get("SHOP_GREETING", "")}


def serve_http(port: int, token: str) -> None:
    import uvicorn

    asgi = app.streamable_http_app(host="127.0.0.1")

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and token:
            headers = dict(scope["headers"])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await asgi(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        serve_http(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        print("testshop on stdio", file=sys.stderr)
        app.run()
'''

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "shop_server.py"
    path.write_text(SERVER)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children() -> set[int]:
    """This process's live (not zombie) child processes."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class HttpServer:
    """The test server serving Streamable HTTP on a port, as a process of its own."""

    def __init__(self, script: Path, log: Path) -> None:
        self.script = script
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> HttpServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), "http", str(self.port), TOKEN],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # uvicorn listens once the app has started
            assert self.process.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the HTTP server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)


@pytest.fixture
def links() -> Iterator[list[McpLink]]:
    made: list[McpLink] = []
    yield made
    for link in made:
        link.close()


@pytest.fixture
def http_server(script: Path, tmp_path: Path) -> Iterator[HttpServer]:
    server = HttpServer(script, tmp_path / "http_server.log").start()
    yield server
    server.stop()


LinkFactory = Callable[..., McpLink]


@pytest.fixture(params=["stdio", "http"])
def make_link(
    request: pytest.FixtureRequest, script: Path, links: list[McpLink]
) -> Iterator[LinkFactory]:
    """Makes links to the test server, over the transport of the test's parameter."""
    if request.param == "stdio":
        spec = McpServerSpec(command=[sys.executable, str(script)], name="shop-stdio")
    else:
        server = request.getfixturevalue("http_server")
        spec = McpServerSpec(
            url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, name="shop-http"
        )

    def make(**options: float) -> McpLink:
        link = McpLink(spec, **options)  # type: ignore[arg-type]
        links.append(link)
        return link

    yield make


def test_tools_are_listed_with_their_read_only_hint(make_link: LinkFactory) -> None:
    link = make_link()
    tools = {tool.name: tool for tool in link.tools()}
    assert set(tools) == {"echo", "add", "fail", "slow", "die", "big", "pid", "where"}
    assert tools["echo"].read_only is True
    assert tools["add"].read_only is False
    assert tools["echo"].description == "Says the text back."
    assert tools["add"].input_schema["properties"].keys() == {"a", "b"}
    assert link.tools() is link.tools()  # cached


def test_calls_answer_and_errors_are_answers(make_link: LinkFactory) -> None:
    link = make_link()
    assert link.call("add", {"a": 2, "b": 3}) == CallAnswer(False, "5", {"result": 5})
    assert link.call("echo", {"text": "héllo"}).text == "héllo"
    failed = link.call("fail", {})
    assert failed.is_error and "out of stock" in failed.text
    unknown = link.call("no_such_tool", {})
    assert unknown.is_error and "no_such_tool" in unknown.text
    invalid = link.call("add", {"a": "two"})
    assert invalid.is_error


def test_a_call_past_its_timeout_is_outcome_unknown_then_calls_work(
    make_link: LinkFactory,
) -> None:
    link = make_link(call_timeout=10.0)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match=r"no answer within 0\.5s"):
        link.call("slow", {"seconds": 5}, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert link.call("slow", {"seconds": 0.05}).text == "slept"
    assert link.call("add", {"a": 1, "b": 1}).text == "2"


def test_stdio_server_death_is_outcome_unknown_then_a_new_process_serves(
    script: Path, links: list[McpLink]
) -> None:
    link = McpLink(McpServerSpec(command=[sys.executable, str(script)]))
    links.append(link)
    first = int(link.call("pid", {}).text)
    with pytest.raises(OutcomeUnknown):
        link.call("die", {})
    deadline = time.monotonic() + 5
    while alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(first)
    second = int(link.call("pid", {}).text)
    assert second != first
    assert link.call("add", {"a": 1, "b": 2}).text == "3"


def test_a_stdio_server_gone_between_calls_is_replaced_unnoticed(
    script: Path, links: list[McpLink]
) -> None:
    """The link sees the process end: the next call goes to a new one, nothing is lost."""
    link = McpLink(McpServerSpec(command=[sys.executable, str(script)]))
    links.append(link)
    first = int(link.call("pid", {}).text)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the link notices the end of the pipe
    assert int(link.call("pid", {}).text) != first


def test_stdio_env_and_cwd_reach_the_server(
    script: Path, links: list[McpLink], tmp_path: Path
) -> None:
    spec = McpServerSpec(
        command=[sys.executable, str(script)], env={"SHOP_GREETING": "hi"}, cwd=str(tmp_path)
    )
    link = McpLink(spec)
    links.append(link)
    assert link.call("where", {}).structured == {"cwd": str(tmp_path), "greeting": "hi"}


def test_http_server_death_is_outcome_unknown_then_a_restarted_server_serves(
    http_server: HttpServer, links: list[McpLink]
) -> None:
    link = McpLink(McpServerSpec(url=http_server.url, headers={"Authorization": f"Bearer {TOKEN}"}))
    links.append(link)
    first = int(link.call("pid", {}).text)
    with pytest.raises(OutcomeUnknown):
        link.call("die", {})
    http_server.stop()
    http_server.start()
    assert int(link.call("pid", {}).text) != first


def test_http_server_gone_between_calls_is_link_down_not_unknown(
    http_server: HttpServer, links: list[McpLink]
) -> None:
    """The connection is refused: the call provably went nowhere, so it is safe to retry."""
    link = McpLink(McpServerSpec(url=http_server.url, headers={"Authorization": f"Bearer {TOKEN}"}))
    links.append(link)
    assert link.call("add", {"a": 1, "b": 2}).text == "3"
    http_server.stop()
    with pytest.raises(LinkDown, match="refused"):
        link.call("add", {"a": 1, "b": 2})
    http_server.start()
    assert link.call("add", {"a": 2, "b": 2}).text == "4"


def test_a_large_answer_is_refused(make_link: LinkFactory) -> None:
    link = make_link(max_answer_bytes=100_000)
    with pytest.raises(AnswerTooLarge, match="2000000 bytes"):
        link.call("big", {})
    assert link.call("echo", {"text": "small"}).text == "small"  # the session is fine
    roomy = make_link(max_answer_bytes=5_000_000)
    assert len(roomy.call("big", {}, timeout=30).text) == 2_000_000


def test_concurrent_calls_each_get_their_own_answer(make_link: LinkFactory) -> None:
    link = make_link()
    answers: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            answers[n] = [link.call("add", {"a": n, "b": i}).text for i in range(10)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert answers == {n * 100: [str(n * 100 + i) for i in range(10)] for n in range(4)}


def test_a_timeout_spares_the_calls_in_flight_beside_it(make_link: LinkFactory) -> None:
    link = make_link()
    link.tools()  # connected
    result: list[str] = []
    beside = threading.Thread(
        target=lambda: result.append(link.call("slow", {"seconds": 1.0}, timeout=10).text)
    )
    beside.start()
    time.sleep(0.2)
    with pytest.raises(OutcomeUnknown):
        link.call("slow", {"seconds": 5}, timeout=0.3)
    beside.join(timeout=10)
    assert result == ["slept"]


def test_unreachable_servers_are_link_down_fast(script: Path, links: list[McpLink]) -> None:
    cases = [
        (McpServerSpec(command=["/nonexistent/shop-server"]), "command not found"),
        (McpServerSpec(command=[sys.executable, "-c", "import sys; sys.exit(3)"]), "closed"),
        (McpServerSpec(url=f"http://127.0.0.1:{free_port()}/mcp"), "refused"),
    ]
    for spec, reason in cases:
        link = McpLink(spec, connect_timeout=5.0)
        links.append(link)
        started = time.monotonic()
        with pytest.raises(LinkDown, match=reason):
            link.call("add", {"a": 1, "b": 2})
        with pytest.raises(LinkDown, match=reason):
            link.tools()
        assert time.monotonic() - started < 5.0


def test_a_server_that_never_answers_is_link_down_at_connect_timeout(
    links: list[McpLink],
) -> None:
    link = McpLink(
        McpServerSpec(command=[sys.executable, "-c", "import time; time.sleep(60)"]),
        connect_timeout=1.0,
    )
    links.append(link)
    started = time.monotonic()
    with pytest.raises(LinkDown, match="initialize timed out after 1s"):
        link.call("add", {"a": 1, "b": 2})
    assert time.monotonic() - started < 2.0


def test_a_wrong_token_is_link_down_with_the_status(
    http_server: HttpServer, links: list[McpLink], caplog: pytest.LogCaptureFixture
) -> None:
    link = McpLink(McpServerSpec(url=http_server.url, headers={"Authorization": "Bearer nope"}))
    links.append(link)
    with pytest.raises(LinkDown, match="HTTP 401 Unauthorized"):
        link.tools()
    assert "nope" not in caplog.text


def test_close_stops_the_server_and_later_calls_are_link_down(
    script: Path, links: list[McpLink]
) -> None:
    before = children()
    link = McpLink(McpServerSpec(command=[sys.executable, str(script)]))
    links.append(link)
    server = int(link.call("pid", {}).text)
    assert server in children()
    started = time.monotonic()
    link.close()
    link.close()  # idempotent
    assert time.monotonic() - started < 5.0
    assert not alive(server)
    assert children() <= before
    with pytest.raises(LinkDown, match="closed"):
        link.call("add", {"a": 1, "b": 2})


def test_server_stderr_goes_to_the_log(
    script: Path, links: list[McpLink], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="agent.adapters.connectors.mcp_link")
    link = McpLink(McpServerSpec(command=[sys.executable, str(script)], name="shop"))
    links.append(link)
    link.tools()
    link.close()
    assert "shop: testshop on stdio" in caplog.text
    assert "MCP link shop: connected" in caplog.text
