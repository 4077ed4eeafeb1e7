"""Questions in Spanish, German and French against the English help centre.

    python bench/multilingual.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --queries bench/data/banking_tune_i18n.jsonl --offtopic bench/data/offtopic_i18n.jsonl

`banking_tune_i18n.jsonl`: 40 questions of the tuning half, each in English ("en") and
translated by hand into "es", "de" and "fr" (product names kept as customers write them), with
the English question's gold documents; `offtopic_i18n.jsonl`: the 15 off-topic questions in
the same four languages. Each question is searched as the product searches it (relevance
threshold on: a question below it gets no passage, as the customer would):

- "customer's words": `search_knowledge_base(query=<translated question>)`;
- "with query_in_english": the tool given the English question too, as Claude is asked to
  give it (tools/knowledge.py); the hand-written English original stands in for Claude's
  translation, so this arm is the ceiling of what the argument can do.

recall@3 / MRR@3 by document, as bench/retrieval.py ranks them; "kept" is the share of
questions that got any passage; "rejected" the share of off-topic questions that got none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import open_kb
from bench.retrieval import Judge, load_jsonl
from ingest.pipeline import ingest
from kb import Hit, KnowledgeBase
from kb.embedder import set_threads
from tools.knowledge import _search

LANGUAGES = ("en", "es", "de", "fr")


def ranked_documents(hits: list[Hit], judge: Judge, k: int) -> list[str]:
    units: list[str] = []
    for hit in hits:
        unit = judge.unit(hit)
        if unit not in units:
            units.append(unit)
    return units[:k]


def measure(
    kb: KnowledgeBase,
    judge: Judge,
    questions: list[dict[str, Any]],
    off: list[dict[str, Any]],
    lang: str,
    with_english: bool,
) -> dict[str, float]:
    def hits(q: dict[str, Any]) -> list[Hit]:
        english = q["en"] if with_english and lang != "en" else None
        return _search(kb, q[lang], english, 12)

    ranks = []
    kept = 0
    for q in questions:
        found = hits(q)
        kept += bool(found)
        units = ranked_documents(found, judge, 3)
        ranks.append(next((r for r, u in enumerate(units, 1) if judge.matches(u, q["gold"])), 0))
    rejected = sum(not hits(q) for q in off)
    n = len(questions)
    return {
        "recall@3": sum(1 for r in ranks if r) / n,
        "mrr@3": sum(1 / r for r in ranks if r) / n,
        "kept": kept / n,
        "rejected": rejected / len(off) if off else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--offtopic", type=Path)
    parser.add_argument("--index", default="retrieval")
    args = parser.parse_args()

    kb = open_kb(args.index)
    report = ingest(kb, [args.corpus])
    print(f"index: {kb.store.count()} chunks ({report.chunks_embedded} embedded now)",
          file=sys.stderr)  # fmt: skip
    set_threads(1)
    questions = load_jsonl(args.queries)
    off = load_jsonl(args.offtopic) if args.offtopic else []
    judge = Judge(args.corpus, [{"gold": q["gold"]} for q in questions])
    print(f"{len(questions)} questions, {len(off)} off-topic, threshold "
          f"{kb.config.dense_threshold}\n")  # fmt: skip
    print("| language | search | recall@3 | MRR@3 | answers kept | off-topic rejected |")
    print("|---|---|---|---|---|---|")
    english: dict[str, float] = {}
    for lang in LANGUAGES:
        arms = [("customer's words", False)] + ([("with query_in_english", True)] * (lang != "en"))
        for name, with_english in arms:
            r = measure(kb, judge, questions, off, lang, with_english)
            if lang == "en":
                english = r
            gap = r["recall@3"] - english["recall@3"]
            print(
                f"| {lang} | {name} | {r['recall@3']:.3f} ({gap:+.3f}) | {r['mrr@3']:.3f} | "
                f"{r['kept']:.0%} | {r['rejected']:.0%} |"
            )


if __name__ == "__main__":
    main()
