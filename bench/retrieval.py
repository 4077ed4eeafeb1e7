"""Retrieval quality and latency: dense-only, BM25-only and hybrid, on a dev set.

    python bench/retrieval.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --queries bench/data/banking_dev.jsonl --offtopic bench/data/offtopic.jsonl -k 3,5,10

recall@k is the share of questions with a gold document among the top k documents (the gold
lists name equally good answers); MRR@k is the mean reciprocal rank of the first gold document.
Chunks are ranked, then collapsed to documents in order of their best chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, open_kb, percentile
from ingest.pipeline import ingest
from kb import KnowledgeBase

VARIANTS = {
    "dense": {"mode": "dense"},
    "bm25": {"mode": "lexical"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid-convex-0.2": {"mode": "hybrid", "fusion": "convex", "lexical_weight": 0.2},
    "hybrid-convex-0.3": {"mode": "hybrid", "fusion": "convex", "lexical_weight": 0.3},
    "hybrid-convex-0.4": {"mode": "hybrid", "fusion": "convex", "lexical_weight": 0.4},
    "hybrid-convex-0.5": {"mode": "hybrid", "fusion": "convex", "lexical_weight": 0.5},
}


def documents_ranked(kb: KnowledgeBase, query: str, k: int, mode: str) -> tuple[list[str], float]:
    start = time.perf_counter()
    hits = kb.search(query, k=k * 4, mode=mode)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    docs: list[str] = []
    for hit in hits:
        if hit.source not in docs:
            docs.append(hit.source)
    return docs[:k], elapsed


def evaluate(kb: KnowledgeBase, questions: list[dict], ks: list[int], mode: str) -> dict:
    kmax = max(ks)
    kb.search("warm up", k=1, mode=mode)  # type: ignore[arg-type]
    latencies, ranks = [], []
    for q in questions:
        docs, elapsed = documents_ranked(kb, q["question"], kmax, mode)
        latencies.append(elapsed * 1000)
        gold = set(q["gold"])
        ranks.append(next((r for r, d in enumerate(docs, start=1) if d in gold), None))
    result = {}
    for k in ks:
        found = [r for r in ranks if r is not None and r <= k]
        result[f"recall@{k}"] = len(found) / len(ranks)
        result[f"mrr@{k}"] = sum(1 / r for r in found) / len(ranks)
    result["p50_ms"] = percentile(latencies, 50)
    result["p99_ms"] = percentile(latencies, 99)
    return result


def best_dense(kb: KnowledgeBase, questions: list[str]) -> list[float]:
    """The best cosine similarity per question, before any threshold applies."""
    base = kb.config
    kb.config = dataclasses.replace(base, dense_threshold=-1.0)
    scores = []
    for q in questions:
        hits = kb.search(q, k=1, mode="dense")
        scores.append(hits[0].dense_score or 0.0 if hits else 0.0)
    kb.config = base
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--offtopic", type=Path)
    parser.add_argument("-k", default="3,5,10")
    parser.add_argument("--index", default="retrieval", help="cache folder name under bench/.cache")
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]

    kb = open_kb(args.index)
    report = ingest(kb, [args.corpus])
    print(
        f"index: {kb.store.count()} chunks ({report.chunks_embedded} embedded now)", file=sys.stderr
    )
    questions = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    base = kb.config
    rows = {}
    for name, variant in VARIANTS.items():
        mode = variant.pop("mode")
        # No relevance threshold while ranking: every question here has an answer.
        kb.config = dataclasses.replace(base, dense_threshold=-1.0, **variant)
        variant["mode"] = mode
        rows[name] = evaluate(kb, questions, ks, mode)
    kb.config = base

    header = ["variant", *[f"{m}@{k}" for k in ks for m in ("recall", "mrr")], "p50 ms", "p99 ms"]
    print(f"{len(questions)} questions, {kb.store.count()} chunks\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, r in rows.items():
        cells = [f"{r[f'{m}@{k}']:.3f}" for k in ks for m in ("recall", "mrr")]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")

    if args.offtopic:
        off = [
            json.loads(line)["question"]
            for line in args.offtopic.read_text().splitlines()
            if line.strip()
        ]
        on_scores = best_dense(kb, [q["question"] for q in questions])
        off_scores = best_dense(kb, off)
        print(f"\nrelevance threshold (best dense cosine); current {base.dense_threshold}:")
        for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
            kept = sum(s >= threshold for s in on_scores) / len(on_scores)
            rejected = sum(s < threshold for s in off_scores) / len(off_scores)
            print(f"  {threshold:.2f}: answers kept {kept:.0%}, off-topic rejected {rejected:.0%}")
        print(f"  dev min/median {min(on_scores):.3f}/{median(on_scores):.3f}; "
              f"off-topic median/max {median(off_scores):.3f}/{max(off_scores):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
