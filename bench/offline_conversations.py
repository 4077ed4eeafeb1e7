"""The offline model's scripted customer conversations (tests/offline_conversations.yaml), as
the table in bench/README.md: what the customer says, how it ended, and whether that is what
was expected. Each runs on a fresh copy of the test store.

    python bench/offline_conversations.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.offline_conversations import Store, scripts


def main() -> None:
    store = Store()
    rows, good = [], 0
    started = time.perf_counter()
    try:
        for number, script in enumerate(scripts(), 1):
            ran = store.run(script)
            problems = ran.problems(script["expect"])
            good += not problems
            said = " / ".join(f"“{w}”" for w in script["say"])
            who = script.get("customer") or "anonymous"
            mark = "yes" if not problems else "NO: " + "; ".join(problems)
            last = ran.replies[-1].split("\n\n", 1)[-1].replace("\n", " ").replace("|", "/")
            last = last if len(last) <= 110 else last[:107].rsplit(" ", 1)[0] + " …"
            cells = [str(number), script["name"], who, said, ran.outcome, last, mark]
            rows.append("| " + " | ".join(cells) + " |")
    finally:
        store.close()
    head = ["#", "conversation", "customer", "the customer says", "outcome", "the last reply",
            "as expected"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{good} of {len(rows)} as expected ({time.perf_counter() - started:.1f} s).")


if __name__ == "__main__":
    main()
