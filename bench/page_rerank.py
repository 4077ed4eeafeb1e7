"""A cheap page-level rerank of the search's top pages, measured before it is built: does the
agreement between the question and a page's place (its breadcrumb or readable id, title and
section heading, which every chunk header carries) order one product's pages better than the
fused score alone?

    python bench/page_rerank.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --tune bench/data/banking_tune.jsonl --test bench/data/banking_test.jsonl \
        --index final-banking --cost
    python bench/page_rerank.py --corpus demo/docs --tune bench/data/demo_dev.jsonl \
        --index final-demo

Each question is searched as the product searches (the default hybrid search, no threshold);
its hits are collapsed into units (documents, or sections when the set names sections, as
`bench/retrieval.py` ranks them) in order of their best chunk; the top `--pages` units are
scored again as fused score + weight x feature. Features:

- place words: the share of the unit's place (breadcrumb, title and the best chunk's section;
  words weighted by IDF over the corpus's places) that the question's words cover (`covers
  place`), or the share of the question the place covers (`covers question`);
- place dense: the cosine of the question with the embedded place, "title > section" of each
  of the unit's candidate chunks (best), or "breadcrumb > title" of the page;
- page evidence: the unit's second-best chunk's fused score (a page found twice).

Every weight is tried; the weight is chosen on the tuning set (the smallest of the best, 0 if
none beats the search as it is), and the test set is reported at that weight, with the range
the test set spans over all the weights tried (to show what choosing by the test set would
have found, not to choose by it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import open_kb
from bench.retrieval import Judge, fresh_encoder, load_jsonl
from ingest.pipeline import ingest
from kb import Hit, KnowledgeBase
from kb.embedder import set_threads

WEIGHTS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
_STOP = frozenset(
    re.findall(
        r"\S+",
        "a an the my our your i you we it is are was do does did can could would should will to "
        "of for with on in and or but not have has this that there get got me if from be what "
        "how why when where which who at by as so any about much many more most some i'm im "
        "i've ive us account accounts",
    )
)


def words(text: str) -> set[str]:
    found = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in found if w not in _STOP}


@dataclasses.dataclass
class Unit:
    name: str
    score: float  # the fused score of its best chunk
    hits: list[Hit]
    features: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Question:
    text: str
    gold: list[str]
    units: list[Unit]


def place(hit: Hit) -> str:
    return " ".join(str(p) for p in (hit.metadata.get("breadcrumb", ""), hit.title, hit.section))


class Places:
    """IDF of place words over every chunk's place, and embeddings of place texts (cached)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        seen = {
            (m.get("breadcrumb", ""), m.get("title", ""), m.get("section", ""))
            for _, _, m in kb.store.all(include_documents=False)
        }
        df: dict[str, int] = {}
        for parts in seen:
            for w in words(" ".join(map(str, parts))):
                df[w] = df.get(w, 0) + 1
        self.idf = {w: math.log(1 + len(seen) / (1 + n)) for w, n in df.items()}
        self.vectors: dict[str, np.ndarray] = {}

    def cover(self, covering: set[str], covered: set[str]) -> float:
        total = sum(self.idf.get(w, 1.0) for w in covered)
        return sum(self.idf.get(w, 1.0) for w in covering & covered) / total if total else 0.0

    def embed(self, texts: list[str]) -> None:
        new = sorted({t for t in texts if t not in self.vectors})
        for text, vector in zip(new, self.kb.embedder.encode_queries(new), strict=True):
            self.vectors[text] = vector


def collect(
    kb: KnowledgeBase, judge: Judge, places: Places, questions: list[dict[str, Any]], pages: int
) -> list[Question]:
    out = []
    embedded = kb.embedder.encode_queries([q["question"] for q in questions])
    for q, qv in zip(questions, embedded, strict=True):
        hits = kb.search(q["question"], k=40)
        units: dict[str, Unit] = {}
        for hit in hits:
            name = judge.unit(hit)
            if name not in units:
                units[name] = Unit(name, hit.score, [])
            units[name].hits.append(hit)
        top = list(units.values())[:pages]
        texts = [f"{h.title} > {h.section}" for u in top for h in u.hits]
        texts += [f"{u.hits[0].metadata.get('breadcrumb', '')} > {u.hits[0].title}" for u in top]
        places.embed(texts)
        asked = words(q["question"])
        for u in top:
            best = u.hits[0]
            where = words(place(best))
            u.features = {
                "covers place": places.cover(asked, where),
                "covers question": places.cover(where, asked),
                "dense title > section": max(
                    float(places.vectors[f"{h.title} > {h.section}"] @ qv) for h in u.hits
                ),
                "dense breadcrumb > title": float(
                    places.vectors[f"{best.metadata.get('breadcrumb', '')} > {best.title}"] @ qv
                ),
                "page evidence": u.hits[1].score if len(u.hits) > 1 else 0.0,
            }
        out.append(Question(q["question"], q["gold"], top))
    return out


def measure(
    questions: list[Question], judge: Judge, score: Callable[[Unit], float]
) -> tuple[float, float]:
    """recall@3, MRR@3."""
    found, reciprocal = 0, 0.0
    for q in questions:
        ranked = sorted(q.units, key=lambda u: -score(u))
        rank = next((r for r, u in enumerate(ranked[:3], 1) if judge.matches(u.name, q.gold)), None)
        if rank:
            found += 1
            reciprocal += 1 / rank
    return found / len(questions), reciprocal / len(questions)


def pair(values: tuple[float, float]) -> str:
    return f"{values[0]:.3f} / {values[1]:.3f}"


def weighted(feature: str, weight: float) -> Callable[[Unit], float]:
    return lambda u: u.score + weight * u.features[feature]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--tune", type=Path, required=True)
    parser.add_argument("--test", type=Path)
    parser.add_argument("--index", required=True, help="cache folder name under bench/.cache")
    parser.add_argument("--pages", default="10,20", help="units reranked (comma-separated)")
    parser.add_argument("--cost", action="store_true", help="CPU per search with place vectors")
    args = parser.parse_args()

    kb = open_kb(args.index)
    ingest(kb, [args.corpus])
    fresh_encoder(kb)  # as bench/retrieval.py: the same query embeddings
    set_threads(1)
    kb.config = dataclasses.replace(kb.config, dense_threshold=-1.0)
    kb.search("warm up", k=1)
    sets = {"tune": load_jsonl(args.tune)} | ({"test": load_jsonl(args.test)} if args.test else {})
    judge = Judge(args.corpus, [q for qs in sets.values() for q in qs])
    places = Places(kb)
    head = "| lever | pages | chosen on tune: weight | tune r@3 / MRR@3 | "
    head += "test at that weight | test MRR@3 over all weights |" if args.test else ""
    print(head.rstrip())
    print("|" + "---|" * (6 if args.test else 4))
    for pages in (int(p) for p in args.pages.split(",")):
        data = {name: collect(kb, judge, places, qs, pages) for name, qs in sets.items()}
        base = {name: measure(qs, judge, lambda u: u.score) for name, qs in data.items()}
        row = ["search as it is", str(pages), "—", pair(base["tune"])]
        if args.test:
            row += [pair(base["test"]), ""]
        print("| " + " | ".join(row) + " |")
        for feature in data["tune"][0].units[0].features:
            results = {
                w: {name: measure(qs, judge, weighted(feature, w)) for name, qs in data.items()}
                for w in WEIGHTS
            }
            best = max(results, key=lambda w: (results[w]["tune"][1], results[w]["tune"][0], -w))
            gains = results[best]["tune"][::-1] > base["tune"][::-1]  # MRR@3 first
            chosen = best if gains else 0.0
            at = results[chosen] if chosen else base
            row = [feature, str(pages), f"{chosen:g}" + ("" if chosen else f" (best {best:g}: "
                   f"{results[best]['tune'][0]:.3f} / {results[best]['tune'][1]:.3f})"),
                   pair(at["tune"])]  # fmt: skip
            if args.test:
                span = [results[w]["test"][1] for w in WEIGHTS]
                row += [pair(at["test"]), f"{min(span):.3f}–{max(span):.3f}"]
            print("| " + " | ".join(row) + " |")

    if args.cost:
        qs = [q["question"] for q in sets["tune"]]
        for _round in range(2):
            fresh_encoder(kb)
            start = time.process_time()
            found = [kb.search(q, k=10) for q in qs]
            plain = (time.process_time() - start) / len(qs) * 1000
            fresh_encoder(kb)
            start = time.process_time()
            for q, hits in zip(qs, found, strict=True):
                kb.search(q, k=10)
                kb.embedder.encode([f"{h.title} > {h.section}" for h in hits])
            with_places = (time.process_time() - start) / len(qs) * 1000
        print(f"\nCPU per search (one encoder thread): {plain:.2f} ms; with the place texts of "
              f"its top 10 passages embedded too: {with_places:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
