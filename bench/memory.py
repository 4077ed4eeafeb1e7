"""Where a server worker's memory goes, by component: resident memory (RSS) after each step of
building the product in one fresh process, as `supportbot serve` builds it.

    python bench/memory.py [--rounds 3]

Steps, each measured as the growth of RSS over the step before (the median of `--rounds`
fresh processes): the interpreter; the Anthropic SDK; FastAPI and uvicorn; SQLAlchemy and
SQLModel; the rest of the product's modules (`agent.api.app`, which imports the knowledge base
module, and through it numpy, chromadb's client, bm25s and PyStemmer, as far as they are
imported at start); the runtime (`build_runtime`: the database engine, the SDK clients, the
tools, the knowledge base opened on the demo docs); the app; the query encoder on ONNX
Runtime (loaded by a first search) and the lexical index; 50 searches. The knowledge base
is the demo docs, ingested once under bench/.cache/memory.

The peak with 200 conversations in flight is measured through HTTP by
`bench/load.py --workers 1 --only throughput --mixed-throughput`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "demo" / "docs"
CACHE = ROOT / "bench" / ".cache" / "memory"

STEPS = r"""
import gc, json, os, sys, time
sys.path.insert(0, os.environ["ROOT"])
out = []
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
def step(name):
    out.append((name, rss()))
step("interpreter")
import anthropic
step("anthropic SDK")
import fastapi, uvicorn, starlette.applications
step("FastAPI, uvicorn")
import sqlalchemy, sqlmodel
step("SQLAlchemy, SQLModel")
mods = set(sys.modules)
import agent.api.app
step("the product's modules (agent.api.app)")
heavy = [m for m in ("chromadb", "bm25s", "scipy", "numpy", "onnxruntime", "tokenizers",
                     "Stemmer", "opentelemetry.sdk") if m in sys.modules]
from agent.config import Settings
from agent.runtime import build_runtime
settings = Settings(data_dir=os.environ["DATA"], anthropic_api_key="sk-ant-none")
runtime = build_runtime(settings)
step("runtime: engine, SDK clients, tools, knowledge base opened")
app = agent.api.app.create_app(settings, runtime)
step("the app (routes, schemas)")
kb = runtime.agent.kb
kb.search("how do I descale my kettle", k=3)
step("encoder (ONNX Runtime) and lexical index: first search")
for n in range(50):
    kb.search(f"can I return something after {n} days", k=3)
step("50 searches")
gc.collect()
print(json.dumps({"steps": out, "heavy_at_import": heavy}))
"""


def ingest(env: dict[str, str]) -> None:
    if (CACHE / "supportbot.db").exists():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "supportbot"
    subprocess.run([str(exe), "ingest", str(DOCS)], env=env, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "ROOT": str(ROOT),
           "SUPPORTBOT_DATA_DIR": str(CACHE), "DATA": str(CACHE),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    ingest(env)
    runs = []
    for _ in range(args.rounds):
        done = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    names = [name for name, _ in runs[0]["steps"]]
    print("| step | RSS after, MiB | growth, MiB |\n|---|---|---|")
    previous = 0.0
    for i, name in enumerate(names):
        after = statistics.median(run["steps"][i][1] for run in runs)
        print(f"| {name} | {after:.0f} | {after - previous:+.0f} |")
        previous = after
    print(f"\nimported by the product's modules at start: {', '.join(runs[0]['heavy_at_import'])}")


if __name__ == "__main__":
    main()
