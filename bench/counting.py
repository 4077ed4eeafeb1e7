"""What counting a request's tokens costs as a conversation grows: each request of a turn
adds a message or two to a history that is the same objects as before.

    python bench/counting.py

Prints microseconds per request at several history lengths, exact counting off (the
default) and on (a stand-in for the Token Counting API, so only our side is measured).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.engine.budget import TokenCounter
from agent.models.base import ModelRequest
from tools import default_registry


def history(n: int) -> list[dict]:  # type: ignore[type-arg]
    messages = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        text = f"message {i}: " + "a sentence of an ordinary support conversation " * 6
        messages.append({"role": role, "content": [{"type": "text", "text": text}]})
    return messages


def per_request_us(n: int, exact: bool, requests: int = 200) -> float:
    counter = TokenCounter(exact=(lambda r: 1000) if exact else None)
    tools = default_registry().schemas()
    messages = history(n)
    counter.count(ModelRequest("system", messages, tools, 1024))  # the turn's first request
    start = time.perf_counter()
    for i in range(requests):  # each later request: the same history plus what is new
        messages = [*messages, {"role": "user", "content": [{"type": "text", "text": f"q{i}"}]}]
        counter.count(ModelRequest("system", messages, tools, 1024))
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    print("| messages in the history | µs per request, estimate | µs per request, exact cache |")
    print("|---|---|---|")
    for n in (10, 100, 1000):
        print(f"| {n} | {per_request_us(n, False):.0f} | {per_request_us(n, True):.0f} |")


if __name__ == "__main__":
    main()
