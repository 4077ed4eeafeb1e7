"""Follow-up questions that name no product: the product was named in an earlier message.

    python bench/followups.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --queries bench/data/banking_tune_followups.jsonl

`banking_tune_followups.jsonl`: 24 questions of the banking tuning half rewritten as a
conversation would have them: what the customer said before ("I have the Bronze Rewards
Card"), then the question without the product ("what's the minimum cash back I need before I
can redeem?"). Three ways to search, as configured (relevance threshold on):

- "the follow-up alone": the last message as it was typed;
- "earlier message + follow-up": the customer's previous message put before it, the rewrite
  a model that cannot paraphrase could make;
- "rewritten question": the original question, which names the product (what Claude writes as
  the tool's query when it has the conversation in view): the ceiling.

recall@3 / MRR@3 by document, as bench/retrieval.py ranks them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import open_kb
from bench.multilingual import ranked_documents
from bench.retrieval import Judge, load_jsonl
from ingest.pipeline import ingest
from kb.embedder import set_threads


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--index", default="retrieval")
    args = parser.parse_args()

    kb = open_kb(args.index)
    ingest(kb, [args.corpus])
    set_threads(1)
    questions = load_jsonl(args.queries)
    judge = Judge(args.corpus, questions)
    arms = {
        "the follow-up alone": lambda q: q["question"],
        "earlier message + follow-up": lambda q: f"{q['said_before']}. {q['question']}",
        "rewritten question": lambda q: q["original"],
    }
    print(f"{len(questions)} follow-up questions\n")
    print("| search | recall@3 | MRR@3 | answers kept |")
    print("|---|---|---|---|")
    for name, query in arms.items():
        ranks, kept = [], 0
        for q in questions:
            hits = kb.search(query(q), k=12)
            kept += bool(hits)
            units = ranked_documents(hits, judge, 3)
            ranks.append(
                next((r for r, u in enumerate(units, 1) if judge.matches(u, q["gold"])), 0)
            )
        n = len(questions)
        print(
            f"| {name} | {sum(1 for r in ranks if r) / n:.3f} | "
            f"{sum(1 / r for r in ranks if r) / n:.3f} | {kept / n:.0%} |"
        )


if __name__ == "__main__":
    main()
