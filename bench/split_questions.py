"""Splits a dev set in two, deterministically: a tuning half and a test half.

    python bench/split_questions.py bench/data/banking_dev.jsonl \
        bench/data/banking_tune.jsonl bench/data/banking_test.jsonl

A question goes to the tuning half when the first byte of the SHA-256 of its text is even
(the banking questions have no id; their text is their identity). The split does not depend
on the order of the file, and a question added later lands where it always will. Retrieval
changes are tuned on the first half; the second is only looked at to report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path


def tuning_half(question: str) -> bool:
    return hashlib.sha256(question.encode()).digest()[0] % 2 == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("tune", type=Path)
    parser.add_argument("test", type=Path)
    args = parser.parse_args()
    lines = [line for line in args.source.read_text().splitlines() if line.strip()]
    tune = [line for line in lines if tuning_half(json.loads(line)["question"])]
    test = [line for line in lines if not tuning_half(json.loads(line)["question"])]
    args.tune.write_text("".join(f"{line}\n" for line in tune))
    args.test.write_text("".join(f"{line}\n" for line in test))
    print(f"{len(lines)} questions: {len(tune)} to {args.tune}, {len(test)} to {args.test}")


if __name__ == "__main__":
    main()
