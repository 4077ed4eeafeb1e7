"""Peak resident memory of `supportbot ingest` on a corpus, per encoder, into an empty index.

    python bench/ingest_memory.py --corpus ../shared/data/banking_kb/documents.jsonl \
        --encoders onnx,torch --rounds 2

Each run is a fresh `supportbot ingest CORPUS` process with its own empty data directory,
measured by GNU time (`%M`: the process's peak RSS, from the kernel) and sampled every 50 ms
from /proc for where the peak falls. The ONNX export is made beforehand (`supportbot kb
export-encoder`), so the figure is the ingest's own, not the one-time export's. Runs alternate
between the encoders, round by round. Target (issue 15): ≤ 800 MiB for the banking corpus.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUPPORTBOT = str(Path(sys.executable).with_name("supportbot"))


def sample(pid: int, out: list[tuple[float, int]], stop: threading.Event) -> None:
    start = time.perf_counter()
    while not stop.is_set():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out.append((time.perf_counter() - start, int(line.split()[1]) // 1024))
        time.sleep(0.05)


def run(corpus: Path, encoder: str, extra_env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data, tempfile.NamedTemporaryFile("r") as report:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")},
            # This checkout's code first (as bench/load.py does): the console script alone would
            # import whatever checkout the virtualenv was installed from.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "SUPPORTBOT_DATA_DIR": data,
            "SUPPORTBOT_ENCODER": encoder,
            **extra_env,
        }
        command = ["/usr/bin/time", "-o", report.name, "-f", "%M %e %U %S",
                   SUPPORTBOT, "ingest", str(corpus)]  # fmt: skip
        process = subprocess.Popen(command, env=env, cwd=data, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(0.2)  # GNU time has started the ingest by now
        child = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
        samples: list[tuple[float, int]] = []
        stop = threading.Event()
        pids = child.stdout.split()
        watcher = threading.Thread(target=sample, args=(int(pids[0]) if pids else 0, samples, stop))
        if pids:
            watcher.start()
        stdout, stderr = process.communicate()
        stop.set()
        if pids:
            watcher.join()
        if process.returncode != 0:
            raise SystemExit(f"ingest failed ({process.returncode}): {stderr[-2000:]}")
        peak_kib, wall, user, system = report.read().split()[-4:]
        at = max(samples, key=lambda s: s[1]) if samples else (0.0, 0)
        return {
            "peak_mib": int(peak_kib) / 1024,
            "wall_s": float(wall),
            "cpu_s": float(user) + float(system),
            "peak_at_s": at[0],
            "summary": stdout.strip().splitlines()[-1] if stdout.strip() else "",  # type: ignore[dict-item]
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--encoders", default="onnx,torch")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    encoders = args.encoders.split(",")
    if "onnx" in encoders:
        subprocess.run([SUPPORTBOT, "kb", "export-encoder"], check=True)
    results: dict[str, list[dict[str, float]]] = {e: [] for e in encoders}
    for round_ in range(args.rounds):
        for encoder in encoders if round_ % 2 == 0 else encoders[::-1]:
            r = run(args.corpus.resolve(), encoder, {})
            results[encoder].append(r)
            print(f"round {round_ + 1} {encoder}: peak RSS {r['peak_mib']:.0f} MiB "
                  f"(at {r['peak_at_s']:.1f} s), {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU"
                  f" — {r['summary']}", flush=True)  # fmt: skip
    print("\n| encoder | peak RSS MiB (runs) | wall s | target |")
    print("|---|---|---|---|")
    for encoder, rs in results.items():
        peaks = ", ".join(f"{r['peak_mib']:.0f}" for r in rs)
        walls = ", ".join(f"{r['wall_s']:.1f}" for r in rs)
        print(f"| {encoder} | {max(r['peak_mib'] for r in rs):.0f} ({peaks}) | {walls} | ≤ 800 |")


if __name__ == "__main__":
    main()
