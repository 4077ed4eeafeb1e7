"""Triage preparation: throughput against the raw encoder, and peak memory against ticket count.

    python bench/triage.py --sizes 3000,30000 --rounds 3

Preparation is everything `supportbot triage` does before the API: reading the tickets as a
stream, grounding them in the knowledge base (`search_many`, chunks of 256), and writing each
request to its batch body on disk. No API is called.

1. Throughput, interleaved A/B within one run on the same ticket texts: A is
   `Embedder.encode` alone on the texts triage embeds (the ceiling), B the full preparation.
   Target: B >= 0.8x A (median of the rounds' ratios).
2. Peak RSS (ru_maxrss) of a fresh process preparing each size, with the process's RSS once
   the encoder and the index are loaded. Target: flat within 10% from 3,000 to 30,000 tickets.

The knowledge base is demo/docs, ingested once under bench/.cache/triage.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config import Settings
from agent.features.triage import TriageRequests, grounded, iter_tickets
from agent.features.triage_batches import prepare_batches
from bench.common import CACHE
from ingest.pipeline import ingest
from kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
MODEL = "claude-sonnet-5-5"

PRODUCTS = ["electric kettle EK-1500", "office chair", "water bottle", "kettle", "desk lamp",
            "ergonomic chair", "insulated bottle", "toaster", "coffee grinder",
            "blender"]  # fmt: skip
PROBLEMS = [
    "My {p} arrived broken and the box was crushed.",
    "I ordered a {p} two weeks ago (order #W{n}) and it still has not arrived.",
    "How do I descale the {p}? The manual is not clear.",
    "I want to return the {p} I bought last month, it is not what I expected.",
    "I was charged twice for my {p} order #W{n}.",
    "The tracking link for order #W{n} has not updated in five days.",
    "Is the {p} covered by the warranty if the lid hinge snaps?",
    "I can't sign in to my account to check on my {p}.",
    "Can I exchange the {p} for a different colour?",
    "The seal on my {p} leaks when it is full.",
]
DETAILS = [
    "I have already tried turning it off and on again.",
    "This is the second time this has happened to me.",
    "I need it before the weekend because it is a gift.",
    "The parcel was left at the wrong address according to my neighbour.",
    "I paid with a gift card and part with my credit card.",
    "Please tell me what the options are.",
    "It worked for a week and then stopped.",
    "My partner says the refund should take three days, is that right?",
]
MOODS = ["Thanks in advance!", "This is really unacceptable.", "Hope you can help.",
         "I am very disappointed.", "Love your products otherwise.", ""]  # fmt: skip


def write_tickets(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            product = rng.choice(PRODUCTS)
            sentences = [rng.choice(PROBLEMS).format(p=product, n=rng.randrange(10**6, 10**7))]
            sentences += [*rng.sample(DETAILS, rng.randint(1, 3)), rng.choice(MOODS)]
            record = {"id": f"T-{i:06d}", "subject": product.capitalize(),
                      "text": " ".join(s for s in sentences if s)}  # fmt: skip
            f.write(json.dumps(record) + "\n")


def open_demo_kb() -> tuple[Settings, KnowledgeBase]:
    settings = Settings(data_dir=CACHE / "triage")
    kb = KnowledgeBase.open(settings)
    ingest(kb, [ROOT / "demo" / "docs"])  # unchanged documents are skipped
    return settings, kb


def prepare(settings: Settings, kb: KnowledgeBase, path: Path, folder: Path) -> int:
    """The preparation `supportbot triage` runs, without the API; the ticket count."""
    requests = TriageRequests(settings, MODEL)
    pairs = grounded(kb, iter_tickets(path, lambda problem: None))
    return sum(b.count for b in prepare_batches(pairs, requests, folder))


def warm(kb: KnowledgeBase) -> None:
    kb.search_many(["warm up the encoder and the lexical index"], k=3)


def throughput(size: int, rounds: int) -> None:
    settings, kb = open_demo_kb()
    warm(kb)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tickets.jsonl"
        write_tickets(path, size)
        texts = [t.text[:1000] for t in iter_tickets(path, lambda problem: None)]
        ratios = []
        print(f"{size:,} tickets, {rounds} rounds (A: raw encode, B: preparation)")
        for r in range(rounds):
            start = time.perf_counter()
            kb.embedder.encode(texts)
            encode_rate = size / (time.perf_counter() - start)
            start = time.perf_counter()
            count = prepare(settings, kb, path, Path(tmp) / f"batches{r}")
            prepare_rate = count / (time.perf_counter() - start)
            ratios.append(prepare_rate / encode_rate)
            print(f"  round {r + 1}: encode {encode_rate:.1f}/s, preparation {prepare_rate:.1f}/s"
                  f" = {ratios[-1]:.2f}x")  # fmt: skip
        print(f"median ratio: {statistics.median(ratios):.2f}x (target >= 0.8x)")


def rss_child(size: int) -> None:
    settings, kb = open_demo_kb()
    warm(kb)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tickets.jsonl"
        write_tickets(path, size)
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        count = prepare(settings, kb, path, Path(tmp) / "batches")
        seconds = time.perf_counter() - start
        body = sum(p.stat().st_size for p in (Path(tmp) / "batches").glob("*.body.json"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"tickets": count, "loaded_kb": loaded, "peak_kb": peak,
                      "seconds": seconds, "body_bytes": body}))  # fmt: skip


def memory(sizes: list[int]) -> None:
    rows = []
    for size in sizes:
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(size)],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| tickets | batch bodies | preparation | RSS, encoder + index loaded | peak RSS |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['tickets']:,} | {row['body_bytes'] / 1e6:.0f} MB | {row['seconds']:.0f} s "
              f"({row['tickets'] / row['seconds']:.0f}/s) | {row['loaded_kb'] / 1024:.0f} MB | "
              f"{row['peak_kb'] / 1024:.0f} MB |")  # fmt: skip
    growth = rows[-1]["peak_kb"] / rows[0]["peak_kb"] - 1
    print(f"peak RSS growth {rows[0]['tickets']:,} -> {rows[-1]['tickets']:,}: {growth:+.1%}"
          " (target within 10%)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="3000,30000", help="ticket counts for peak RSS")
    parser.add_argument("--throughput-tickets", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return
    if args.throughput_tickets:  # --throughput-tickets 0: memory only
        throughput(args.throughput_tickets, args.rounds)
    if args.sizes:  # --sizes "": throughput only
        memory([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
