"""Ingest throughput against raw encoding, re-ingest speed, and search latency at ~10k chunks.

    python bench/ingest.py --corpus ../shared/data/banking_kb/documents.jsonl --copies 2

1. Chunks every document, then times the encoder alone (`Embedder.encode`: ONNX Runtime or
   sentence-transformers, `--encoder`) on those chunk texts: the ceiling for ingest.
2. Times a full ingest into an empty index (load, chunk, embed, write): chunks per second, and
   its ratio to the raw encode (target >= 0.8).
3. Times a second ingest of the unchanged corpus (target >= 20x faster than the first).
4. With `--copies N` the corpus is ingested N times under different ids to reach ~10k chunks,
   then measures warm search latency, p50 and p99 (target p50 <= 20 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CACHE, open_kb, percentile
from ingest.chunker import chunk_document
from ingest.loaders import load
from ingest.pipeline import ingest
from kb.embedder import set_threads

QUERIES = [
    "how do I dispute a charge on my credit card",
    "what is the overdraft fee on a checking account",
    "can I open a business savings account online",
    "how long does an instant transfer take",
    "what happens if I pay my buy now pay later installment late",
    "how do I close my account",
    "minimum balance to avoid the monthly fee",
    "lost card replacement",
    "interest rate on savings",
    "how to add an authorized user",
]


def copy_corpus(corpus: Path, copies: int, folder: Path) -> list[Path]:
    """The corpus, plus copies whose record ids differ (so they are distinct documents)."""
    paths = [corpus]
    for n in range(1, copies):
        target = folder / f"copy{n}.jsonl"
        with corpus.open() as src, target.open("w") as out:
            for line in src:
                if line.strip():
                    record = json.loads(line)
                    record["id"] = f"{record['id']}__copy{n}"
                    out.write(json.dumps(record) + "\n")
        paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=1, help="ingest N copies (~10k chunks: 2)")
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument(
        "--encoder",
        choices=["onnx", "onnx-int8", "torch"],
        help="default: SUPPORTBOT_ENCODER, else onnx",
    )
    args = parser.parse_args()

    shutil.rmtree(CACHE / "ingest", ignore_errors=True)
    set_threads(os.cpu_count() or 1)  # as `supportbot ingest` runs it
    kb = open_kb("ingest", args.encoder)
    print(f"encoder: {kb.embedder.backend}")
    embedder = kb.embedder
    embedder.encode(["warm up"] * 64)  # load the model and warm the kernels outside the timings

    documents, _ = load(args.corpus)
    texts = [
        c.embed_text for d in documents for c in chunk_document(d, count=embedder.count_tokens)
    ]
    start = time.perf_counter()
    embedder.encode(texts)
    raw = time.perf_counter() - start
    raw_rate = len(texts) / raw
    print(f"raw encode: {len(texts)} chunks in {raw:.1f} s = {raw_rate:.1f} chunks/s")

    start = time.perf_counter()
    first = ingest(kb, [args.corpus])
    full = time.perf_counter() - start
    rate = first.chunks_embedded / full
    print(f"full ingest: {len(first.added)} documents, {first.chunks_embedded} chunks "
          f"in {full:.1f} s = {rate:.1f} chunks/s = {rate / raw_rate:.2f}x raw encode "
          "(target >= 0.8)")  # fmt: skip

    start = time.perf_counter()
    second = ingest(kb, [args.corpus])
    again = time.perf_counter() - start
    print(f"unchanged re-ingest: {second.unchanged} unchanged, {second.chunks_embedded} "
          f"embedded in {again:.2f} s = {full / again:.0f}x faster than the first "
          "(target >= 20)")  # fmt: skip

    with tempfile.TemporaryDirectory() as folder:
        extra = copy_corpus(args.corpus, args.copies, Path(folder))[1:]
        if extra:
            ingest(kb, extra)
    total = kb.store.count()
    set_threads(1)  # searches: as the server runs them
    for q in QUERIES:  # warm: model, HNSW index, lexical index
        kb.search(q, k=5)
    latencies = []
    for i in range(args.searches):
        start = time.perf_counter()
        kb.search(QUERIES[i % len(QUERIES)], k=5)
        latencies.append((time.perf_counter() - start) * 1000)
    print(f"search at {total} chunks: p50 {percentile(latencies, 50):.1f} ms, "
          f"p99 {percentile(latencies, 99):.1f} ms over {args.searches} warm searches "
          "(target p50 <= 20)")  # fmt: skip


if __name__ == "__main__":
    main()
