"""Retrieval quality and latency: dense-only, BM25-only and hybrid, on a dev set.

    python bench/retrieval.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --queries bench/data/banking_tune.jsonl bench/data/banking_test.jsonl \
        --offtopic bench/data/offtopic.jsonl -k 3,5,10
    python bench/retrieval.py --corpus demo/docs --index retrieval-demo \
        --queries bench/data/demo_dev.jsonl --offtopic bench/data/demo_offtopic.jsonl -k 3,5,10

A question's `gold` list names its equally good answers: a document ("doc_x", or a file's path
relative to a `--corpus` folder, "shipping.md"), or a section of one ("shipping.md#Late or lost
parcels > My parcel is late"; a section also matches its subsections, "doc#" the text before
the first heading). When a dev set names sections, hits are collapsed to sections, else to
documents, in order of their best chunk. recall@k is the share of questions with a gold answer
among the top k; MRR@k the mean reciprocal rank of the first gold answer.

Several question sets (`--queries tune.jsonl test.jsonl`) are each reported on their own: tune
on one, report on the other. Latency is one search, warm, with the query embedding computed (no
cached embedding) by one encoder thread, as the server runs it; so is the CPU comparison of a
search with and without query normalisation (`--cost`).

Off-topic questions (`--offtopic`, optionally with a `kind`) must find nothing: "rejected" is
the share for which the search as configured (relevance threshold on) returns no passage, and
"answers kept" the share of dev questions for which it returns some.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median, open_kb, percentile
from ingest.chunker import CHUNK_OVERLAP, CHUNK_TOKENS
from ingest.pipeline import ingest
from kb import Hit, KnowledgeBase
from kb.embedder import Embedder, set_threads
from kb.lexical import LexicalIndex
from kb.types import stored_context

VARIANTS: dict[str, dict[str, Any]] = {
    # The search as configured (KBConfig's defaults): convex fusion, BM25 weight 0.3 within a
    # lexical window of 0.1.
    "default": {"mode": "hybrid"},
    "dense": {"mode": "dense"},
    "bm25": {"mode": "lexical"},
    "hybrid-rrf": {"mode": "hybrid", "fusion": "rrf"},
    # BM25 counted for every candidate, as before the lexical window.
    **{
        f"hybrid-convex-{w}": {"mode": "hybrid", "lexical_weight": w, "lexical_window": None}
        for w in (0.2, 0.3, 0.4, 0.5)
    },
    **{
        f"window-{x}": {"mode": "hybrid", "lexical_window": x}
        for x in (0.02, 0.03, 0.05, 0.07, 0.1)
    },
    **{f"candidates-{n}": {"mode": "hybrid", "candidates": n} for n in (10, 50, 100)},
    # The default without query normalisation (kb/normalise.py), on the same index.
    "dense-raw-query": {"mode": "dense", "normalise_queries": False},
    "default-raw-query": {"mode": "hybrid", "normalise_queries": False},
}


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Judge:
    """Names hits the way a dev set names its answers."""

    def __init__(self, corpus: Path, questions: list[dict[str, Any]]) -> None:
        self.root = corpus.resolve() if corpus.is_dir() else None
        self.sections = any("#" in g for q in questions for g in q["gold"])

    def document(self, source: str) -> str:
        if self.root is not None:
            path = Path(source)
            if path.is_relative_to(self.root):
                return path.relative_to(self.root).as_posix()
        return source

    def unit(self, hit: Hit) -> str:
        doc = self.document(hit.source)
        return f"{doc}#{hit.section}" if self.sections else doc

    @staticmethod
    def matches(unit: str, gold: list[str]) -> bool:
        doc, _, section = unit.partition("#")
        for answer in gold:
            gold_doc, has_section, gold_section = answer.partition("#")
            if gold_doc != doc:
                continue
            if not has_section or section == gold_section:
                return True
            if gold_section and section.startswith(gold_section + " > "):
                return True
        return False


def units_ranked(
    kb: KnowledgeBase, judge: Judge, query: str, k: int, mode: str
) -> tuple[list[str], float]:
    start = time.perf_counter()
    hits = kb.search(query, k=k * 4, mode=mode)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - start
    units: list[str] = []
    for hit in hits:
        unit = judge.unit(hit)
        if unit not in units:
            units.append(unit)
    return units[:k], elapsed


def evaluate(
    kb: KnowledgeBase, judge: Judge, questions: list[dict[str, Any]], ks: list[int], mode: str
) -> dict[str, Any]:
    kmax = max(ks)
    fresh_encoder(kb)  # no query embedding kept from an earlier variant
    kb.search("warm up", k=1, mode=mode)  # type: ignore[arg-type]
    latencies, ranks, found_units = [], [], []
    for q in questions:
        units, elapsed = units_ranked(kb, judge, q["question"], kmax, mode)
        latencies.append(elapsed * 1000)
        found_units.append(units)
        ranks.append(
            next((r for r, u in enumerate(units, start=1) if judge.matches(u, q["gold"])), None)
        )
    result: dict[str, Any] = {"ranks": ranks, "units": found_units}
    for k in ks:
        found = [r for r in ranks if r is not None and r <= k]
        result[f"recall@{k}"] = len(found) / len(ranks)
        result[f"mrr@{k}"] = sum(1 / r for r in found) / len(ranks)
    result["p50_ms"] = percentile(latencies, 50)
    result["p99_ms"] = percentile(latencies, 99)
    return result


def fresh_encoder(kb: KnowledgeBase) -> None:
    """The same loaded model, without the embeddings of queries it has already seen, so that
    a timing includes the encoder as a new question would."""
    old = kb.embedder
    kb.embedder = Embedder(
        Path(old.model_path), batch_size=old.batch_size, backend=old.backend,
        cache_dir=old.cache_dir, data_dir=old.data_dir,
    )  # fmt: skip


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


def normalisation_cost(kb: KnowledgeBase, questions: list[str], rounds: int = 6) -> None:
    """CPU time of a search with query normalisation against the same search without it (a
    second facade over the same store and encoder), interleaved round by round in one run;
    the normalisation alone; and what it adds to building the lexical index."""
    plain = KnowledgeBase(
        dataclasses.replace(kb.config, normalise_queries=False), kb.store, kb.embedder
    )
    index = kb._lexical_index()
    plain._lexical_index()
    cpu: dict[str, list[float]] = {"with": [], "without": [], "alone": []}

    def per_question(run: Any) -> float:
        start = time.process_time()
        for q in questions:
            run(q)
        return (time.process_time() - start) / len(questions) * 1000

    for round_ in range(rounds):
        arms = [("with", kb), ("without", plain)]
        for name, facade in arms if round_ % 2 == 0 else arms[::-1]:
            fresh_encoder(facade)
            cpu[name].append(per_question(lambda q, f=facade: f.search(q, k=3)))
        cpu["alone"].append(
            per_question(lambda q: (index.speller.correct_text(q), index.prepare(q)))
        )
    rows = kb.store.all()
    ids = [i for i, _, _ in rows]
    texts = [stored_context(t, m) for _, t, m in rows]
    builds: dict[bool, list[float]] = {}
    for on in (False, True, False, True):
        start = time.process_time()
        LexicalIndex(ids, texts, normalise=on, known_stems=kb._known_stems())
        builds.setdefault(on, []).append(time.process_time() - start)
    w, wo, alone = (median(cpu[k]) for k in ("with", "without", "alone"))
    print(f"\nCPU per search, median of {rounds} interleaved rounds: {w:.2f} ms with query "
          f"normalisation, {wo:.2f} ms without (x{w / wo:.2f}); the normalisation alone "
          f"{alone * 1000:.0f} µs. Lexical index build {min(builds[True]):.2f} s with it, "
          f"{min(builds[False]):.2f} s without.")  # fmt: skip


def ablate(levers: set[str]) -> None:
    """Turns ingest levers off for this process, to measure what each is worth."""
    from ingest import chunker
    from ingest.loaders import jsonl

    unknown = levers - {"breadcrumb", "structure"}
    if unknown:
        raise SystemExit(f"unknown lever(s): {', '.join(sorted(unknown))}")
    if "breadcrumb" in levers:
        jsonl.id_words = lambda identifier: ""  # type: ignore[assignment]
    if "structure" in levers:
        chunker._table_pieces = lambda *a: None  # type: ignore[assignment]
        chunker._list_pieces = lambda *a: None  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True, help="a file or a folder")
    parser.add_argument(
        "--queries", type=Path, nargs="+", required=True,
        help="question sets, each reported on its own (e.g. the tuning and the test half)",
    )  # fmt: skip
    parser.add_argument("--offtopic", type=Path)
    parser.add_argument("-k", default="3,5,10")
    parser.add_argument("--index", default="retrieval", help="cache folder name under bench/.cache")
    parser.add_argument("--variants", help=f"comma-separated subset of: {', '.join(VARIANTS)}")
    parser.add_argument("--misses", action="store_true", help="list the default's misses at k")
    parser.add_argument("--max-tokens", type=int, default=CHUNK_TOKENS, help="chunk size (ingest)")
    parser.add_argument("--overlap", type=int, default=CHUNK_OVERLAP, help="chunk overlap (ingest)")
    parser.add_argument("--cost", action="store_true", help="also time query normalisation")
    parser.add_argument(
        "--ablate", default="",
        help="measure without an ingest lever (use a fresh --index): breadcrumb (the words of a "
        "record's id in the chunk header), structure (tables and lists cut between rows/items)",
    )  # fmt: skip
    parser.add_argument(
        "--encoder",
        choices=["onnx", "onnx-int8", "torch"],
        help="default: SUPPORTBOT_ENCODER, else onnx",
    )
    parser.add_argument(
        "--query-encoder", choices=["onnx", "onnx-int8", "torch"],
        help="search an index built by --encoder with the other encoder's query embeddings",
    )  # fmt: skip
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    names = args.variants.split(",") if args.variants else list(VARIANTS)

    ablate(set(filter(None, args.ablate.split(","))))
    kb = open_kb(args.index, args.encoder)
    report = ingest(kb, [args.corpus], max_tokens=args.max_tokens, overlap_tokens=args.overlap)
    print(
        f"index: {kb.store.count()} chunks ({report.chunks_embedded} embedded now) by the "
        f"{kb.embedder.backend} encoder, chunks of {args.max_tokens} tokens, "
        f"{args.overlap} of overlap",
        file=sys.stderr,
    )
    if args.query_encoder:
        kb.embedder = Embedder(batch_size=kb.embedder.batch_size, backend=args.query_encoder)
    print(f"queries embedded by the {kb.embedder.backend} encoder", file=sys.stderr)
    set_threads(1)  # searches: the encoder as the server runs it (SUPPORTBOT_ENCODER_THREADS)
    sets = {path.stem: load_jsonl(path) for path in args.queries}
    questions = [q for qs in sets.values() for q in qs]
    judge = Judge(args.corpus, questions)
    base = kb.config
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name in names:
        variant = dict(VARIANTS[name])
        mode = variant.pop("mode")
        # No relevance threshold while ranking: every question here has an answer.
        kb.config = dataclasses.replace(base, dense_threshold=-1.0, **variant)
        for set_name, qs in sets.items():
            rows[name, set_name] = evaluate(kb, judge, qs, ks, mode)
    kb.config = base

    unit = "sections" if judge.sections else "documents"
    header = [
        "variant", "questions", *[f"{m}@{k}" for k in ks for m in ("recall", "mrr")], "p50 ms",
        "p99 ms",
    ]  # fmt: skip
    sizes = ", ".join(f"{n} {len(qs)}" for n, qs in sets.items())
    print(f"questions: {sizes}; {kb.store.count()} chunks, ranked by {unit}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (name, set_name), r in rows.items():
        cells = [f"{r[f'{m}@{k}']:.3f}" for k in ks for m in ("recall", "mrr")]
        print(
            f"| {name} | {set_name} | " + " | ".join(cells)
            + f" | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )  # fmt: skip

    if args.misses:
        shown = "default" if "default" in names else names[0]
        print(f"\nnot in the top {ks[0]} ({shown}):")
        for set_name, qs in sets.items():
            r = rows[shown, set_name]
            for q, rank, units in zip(qs, r["ranks"], r["units"], strict=True):
                if rank is None or rank > ks[0]:
                    print(
                        f"  {set_name} [{rank}] {q['question']!r}\n      gold {q['gold']}\n"
                        f"      got  {units[:3]}"
                    )

    if args.cost and getattr(base, "normalise_queries", False):
        normalisation_cost(kb, [q["question"] for q in questions])

    answered = [kb.search(q["question"], k=3) for q in questions]
    print(f"\nas configured (threshold {base.dense_threshold}): answers kept "
          f"{sum(bool(h) for h in answered) / len(questions):.0%} of {len(questions)}")  # fmt: skip
    for q, hits in zip(questions, answered, strict=True):
        if not hits:
            print(f"  no answer: {q['question']!r}")
    if args.offtopic:
        off = load_jsonl(args.offtopic)
        found = [kb.search(q["question"], k=3) for q in off]
        kinds: dict[str, list[bool]] = {}
        for q, hits in zip(off, found, strict=True):
            kinds.setdefault(q.get("kind", "off-topic"), []).append(not hits)
            if hits:
                print(f"  not rejected: {q['question']!r} -> {hits[0].title} > {hits[0].section}")
        for kind, rejected in kinds.items():
            print(f"  off-topic rejected ({kind}): {sum(rejected)}/{len(rejected)}")
        on_scores = best_dense(kb, [q["question"] for q in questions])
        off_scores = best_dense(kb, [q["question"] for q in off])
        print("relevance threshold (best dense cosine):")
        for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45):
            kept = sum(s >= threshold for s in on_scores) / len(on_scores)
            rejected = sum(s < threshold for s in off_scores) / len(off_scores)
            print(f"  {threshold:.2f}: answers kept {kept:.0%}, off-topic rejected {rejected:.0%}")
        print(f"  dev min/median {min(on_scores):.3f}/{median(on_scores):.3f}; "
              f"off-topic median/max {median(off_scores):.3f}/{max(off_scores):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
