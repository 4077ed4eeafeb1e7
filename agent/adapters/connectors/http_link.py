"""A shop system's plain HTTP API, as a connector's link (httpx): one request per operation,
built from the connector file's method, path, query and JSON body templates."""

from __future__ import annotations

from typing import Any

import httpx

from agent.adapters.connectors.remote import Answer, NoAnswer, NotSent, TooLarge, render
from agent.adapters.connectors.spec import ConnectorSpec, Operation


class HttpLink:
    kind = "http"

    def __init__(self, spec: ConnectorSpec) -> None:
        assert spec.http is not None
        self.max_bytes = spec.max_answer_bytes
        self.client = httpx.Client(
            base_url=spec.http.base_url,
            headers=spec.http.headers,
            timeout=httpx.Timeout(spec.call_timeout, connect=spec.connect_timeout),
            follow_redirects=False,
        )

    def send(self, operation: Operation, values: dict[str, Any]) -> Answer:
        path = render(operation.path or "/", values, url=True)
        query = render(operation.query, values) if operation.query else None
        body = render(operation.body, values) if operation.body is not None else None
        try:
            with self.client.stream(operation.method, path, params=query, json=body) as response:
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"answer over {self.max_bytes} bytes")
                    chunks.append(chunk)
                text = b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
                return Answer(response.status_code >= 400, text, status=response.status_code)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NotSent(f"cannot connect: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:
            raise NoAnswer(f"no answer in time ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise NoAnswer(f"the connection failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.client.close()
