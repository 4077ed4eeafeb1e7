"""The encoders side by side: do they agree, and what does a query cost?

    python bench/encoders.py                                  # onnx, onnx-int8, torch
    python bench/encoders.py --batch-tokens 256,512,1024,4096,8192 --encoders ""

1. Cosine of each encoder's embeddings to sentence-transformers' (torch) on the demo help
   centre's chunks and on the questions of both dev sets (minimum and mean), and CPU per query
   (one thread, as the server runs it; each question encoded alone, rounds interleaved).
2. `--batch-tokens`: the ONNX encoder's batch bound (`kb.embedder.BATCH_TOKENS`), each value in
   a fresh process with two threads (as ingest runs it) on the first 150 banking documents'
   chunks: chunks per second and how much the peak RSS grows while encoding.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
BANKING = ROOT.parent / "shared" / "data" / "banking_kb" / "documents.jsonl"


def demo_chunks(count: object) -> list[str]:
    from ingest.chunker import chunk_document
    from ingest.loaders import load

    texts: list[str] = []
    for path in sorted((ROOT / "demo" / "docs").rglob("*")):
        if path.is_file():
            documents, _ = load(path)
            for doc in documents:
                texts += [c.embed_text for c in chunk_document(doc, count=count)]  # type: ignore[arg-type]
    return texts


def questions() -> list[str]:
    out = []
    for name in ("demo_dev.jsonl", "banking_dev.jsonl"):
        lines = (ROOT / "bench" / "data" / name).read_text().splitlines()
        out += [json.loads(line)["question"] for line in lines if line.strip()]
    return out


def compare(names: list[str], rounds: int) -> None:
    from kb.embedder import Embedder, set_threads

    set_threads(1)
    reference = Embedder(backend="torch")
    chunks, asked = demo_chunks(reference.count_tokens), questions()
    ref = {"chunks": reference.encode(chunks), "questions": reference.encode(asked)}
    embedders = {name: Embedder(backend=name) for name in names}  # type: ignore[arg-type]
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for e in embedders.values():
        for q in asked[:20]:  # load and warm up
            e.encode([q])
    for round_ in range(rounds):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            start = time.process_time()
            for q in asked:
                embedders[name].encode([q])
            cpu[name].append((time.process_time() - start) / len(asked) * 1000)
    print(f"{len(chunks)} demo chunks, {len(asked)} questions; CPU per query: median of "
          f"{rounds} interleaved rounds, one thread\n")  # fmt: skip
    print("| encoder | cosine to torch: chunks min (mean) | questions min (mean) | CPU ms/query |")
    print("|---|---|---|---|")
    for name, e in embedders.items():
        cells = []
        for kind, texts in (("chunks", chunks), ("questions", asked)):
            cos = (e.encode(texts) * ref[kind]).sum(axis=1)
            cells.append(f"{cos.min():.5f} ({cos.mean():.5f})")
        rounds_ = ", ".join(f"{c:.1f}" for c in cpu[name])
        print(f"| {name} | {cells[0]} | {cells[1]} | {statistics.median(cpu[name]):.2f} "
              f"({rounds_}) |")  # fmt: skip


# The peak from /proc (VmHWM), not ru_maxrss: that one keeps the forking parent's size.
PROBE = """
import sys, time
from pathlib import Path
import kb.embedder as m
from ingest.chunker import chunk_document
from ingest.loaders import load
def peak():
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024
m.set_threads(2)
e = m.Embedder(backend="onnx")
docs, _ = load(Path(sys.argv[2]))
texts = [c.embed_text for d in docs[:150] for c in chunk_document(d, count=e.count_tokens)]
e.encode(["warm up"])
base = peak()
m.BATCH_TOKENS = int(sys.argv[1])
start = time.perf_counter()
e.encode(texts)
rate = len(texts) / (time.perf_counter() - start)
grown = peak() - base
print(f"{len(texts)} {rate:.1f} {grown}")
"""


def batch_tokens(values: list[int], rounds: int) -> None:
    rows: dict[int, list[tuple[float, int]]] = {v: [] for v in values}
    count = 0
    for round_ in range(rounds):
        for value in values if round_ % 2 == 0 else values[::-1]:
            done = subprocess.run(
                [sys.executable, "-c", PROBE, str(value), str(BANKING)], cwd=ROOT,
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            n, rate, grown = done.stdout.split()
            count = int(n)
            rows[value].append((float(rate), int(grown)))
    print(f"\n{count} banking chunks, two threads, {rounds} rounds\n")
    print("| batch tokens | chunks/s (rounds) | peak RSS growth MiB (rounds) |\n|---|---|---|")
    for value, rs in rows.items():
        rates = ", ".join(f"{r:.0f}" for r, _ in rs)
        grown = ", ".join(str(g) for _, g in rs)
        print(f"| {value} | {statistics.median(r for r, _ in rs):.0f} ({rates}) | {grown} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encoders", default="onnx,onnx-int8,torch")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-tokens", default="", help="e.g. 256,512,1024,4096")
    args = parser.parse_args()
    if args.encoders:
        compare(args.encoders.split(","), args.rounds)
    if args.batch_tokens:
        batch_tokens([int(v) for v in args.batch_tokens.split(",")], max(2, args.rounds // 2))


if __name__ == "__main__":
    main()
