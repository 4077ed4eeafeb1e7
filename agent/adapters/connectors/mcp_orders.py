"""A shop system's MCP server as a connector's link: each operation is one tool call
(mcp_link.py), its arguments from the connector file's template."""

from __future__ import annotations

from typing import Any

from agent.adapters.connectors import mcp_link
from agent.adapters.connectors.remote import Answer, NoAnswer, NotSent, TooLarge, render
from agent.adapters.connectors.spec import ConnectorSpec, Operation


def server_of(spec: ConnectorSpec) -> mcp_link.McpServerSpec:
    assert spec.mcp is not None
    server = spec.mcp
    return mcp_link.McpServerSpec(command=server.command, env=server.env, cwd=server.cwd,
                                  url=server.url, headers=server.headers,
                                  name=f"{spec.name} ({spec.where})" if server.url
                                  else spec.name)  # fmt: skip


class McpOrdersLink:
    kind = "mcp"

    def __init__(self, spec: ConnectorSpec) -> None:
        self.link = mcp_link.McpLink(server_of(spec), connect_timeout=spec.connect_timeout,
                                     call_timeout=spec.call_timeout,
                                     max_answer_bytes=spec.max_answer_bytes)  # fmt: skip

    def send(self, operation: Operation, values: dict[str, Any]) -> Answer:
        arguments = render(operation.arguments, values)
        try:
            answer = self.link.call(operation.tool or "", arguments)
        except mcp_link.LinkDown as exc:
            raise NotSent(str(exc)) from exc
        except mcp_link.OutcomeUnknown as exc:
            raise NoAnswer(str(exc)) from exc
        except mcp_link.AnswerTooLarge as exc:
            raise TooLarge(str(exc)) from exc
        return Answer(answer.is_error, answer.text, answer.structured)

    def close(self) -> None:
        self.link.close()
