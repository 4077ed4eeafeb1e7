"""The ONNX encoder: the same embeddings and token counts as sentence-transformers, and a
server process that never imports PyTorch with it (SUPPORTBOT_ENCODER=onnx, the default).

The export is made once into the user's encoder cache (~/.cache/supportbot/encoder) and reused
by later runs, as in production."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bench.encoders import demo_chunks
from kb import embedder as embedder_module
from kb.embedder import Embedder, OnnxEncoder, TorchEncoder

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # loads both encoders (and exports the ONNX one on a new machine)


@pytest.fixture(scope="module")
def encoders() -> tuple[Embedder, Embedder]:
    return Embedder(backend="onnx"), Embedder(backend="torch")


def test_onnx_encoder_is_loaded_without_torch(encoders: tuple[Embedder, Embedder]) -> None:
    onnx, torch = encoders
    assert isinstance(onnx.model, OnnxEncoder)
    assert isinstance(torch.model, TorchEncoder)


def test_onnx_and_torch_embeddings_agree_on_the_demo_help_centre(
    encoders: tuple[Embedder, Embedder],
) -> None:
    onnx, torch = encoders
    texts = demo_chunks(torch.count_tokens)
    assert len(texts) > 30
    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "bench" / "data" / "demo_dev.jsonl").read_text().splitlines()[:40]
    ]
    for batch in (texts, questions, ["  padded with spaces  "], ["x"], ["word " * 400]):
        a, b = onnx.encode(batch), torch.encode(batch)
        assert a.shape == b.shape == (len(batch), 384)
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        assert float((a * b).sum(axis=1).min()) >= 0.9999


def test_query_cache_returns_the_same_rows(encoders: tuple[Embedder, Embedder]) -> None:
    onnx, _ = encoders
    first = onnx.encode_queries(["how do i descale my kettle", "where is my order"])
    again = onnx.encode_queries(["where is my order", "how do i descale my kettle"])
    np.testing.assert_array_equal(first[::-1], again)
    np.testing.assert_allclose(
        first, onnx.encode(["how do i descale my kettle", "where is my order"]), atol=1e-6
    )


def test_token_counts_match_the_transformers_tokenizer(encoders: tuple[Embedder, Embedder]) -> None:
    onnx, torch = encoders
    texts = [
        "",
        "Descale every 4 weeks in hard-water areas.",
        "Café crème, naïve résumé — über straße!",
        "Order #W7678072: 2× kettles, €146.98",
        "word " * 600,  # longer than the model's 256: counted whole, not truncated
        "\tTabs\nand  newlines\r\n",
    ]
    for text in texts:
        assert onnx.count_tokens(text) == torch.count_tokens(text), text
    assert onnx.count_tokens("word " * 600) == 600


def test_a_failed_export_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(model_dir: str, folder: Path) -> Path:
        raise RuntimeError("ONNX export failed: no onnx here")

    monkeypatch.setattr(embedder_module, "_loaded", {})
    monkeypatch.setattr(embedder_module, "onnx_model_file", broken)
    embedder = Embedder(backend="onnx", cache_dir=tmp_path)
    assert isinstance(embedder.model, TorchEncoder)
    assert embedder.encode(["hello"]).shape == (1, 384)


def test_an_export_is_made_once_per_model_and_reused(
    tmp_path: Path, encoders: tuple[Embedder, Embedder]
) -> None:
    onnx, _ = encoders
    model = onnx.model
    assert isinstance(model, OnnxEncoder)
    # The cache holds one file named by what it was made from; a second look finds it.
    found = embedder_module.onnx_model_file(onnx.model_path, model.onnx_file.parent)
    assert found == model.onnx_file
    assert found.name == f"all-MiniLM-L6-v2-{embedder_module.export_key(onnx.model_path)}.onnx"


SERVER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fastapi.testclient import TestClient
    from agent.api.app import create_app
    from agent.config import Settings
    from agent.runtime import build_runtime
    from ingest.pipeline import ingest

    settings = Settings(data_dir=Path(sys.argv[1]))
    runtime = build_runtime(settings)
    ingest(runtime.agent.kb, [Path(sys.argv[2])])
    app = create_app(settings, runtime)
    with TestClient(app) as client:  # the server's start: warm-up in the background
        assert app.state.supportbot.warmed.wait(300)
        ready = client.get("/readyz").status_code
    hits = runtime.agent.kb.search("how do I descale my kettle?", k=1)
    print(json.dumps({
        "ready": ready,
        "hits": len(hits),
        "encoder": type(runtime.agent.kb.embedder.model).__name__,
        "loaded": sorted(m for m in ("torch", "sentence_transformers", "transformers")
                         if m in sys.modules),
    }))
    """
)


@pytest.mark.parametrize(
    ("encoder", "fresh_cache"), [("onnx", False), ("onnx", True), ("torch", False)]
)
def test_server_process_imports_no_torch_with_the_onnx_encoder(
    tmp_path: Path, encoder: str, fresh_cache: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPPORTBOT_", "ANTHROPIC_"))}
    env["SUPPORTBOT_ENCODER"] = encoder
    if fresh_cache:  # the first start exports the model, in a child process
        env["SUPPORTBOT_ENCODER_CACHE"] = str(tmp_path / "encoder")
    done = subprocess.run(
        [sys.executable, "-c", SERVER, str(tmp_path / "data"), str(ROOT / "demo" / "docs" / "manual-electric-kettle.md")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ready"] == 200
    assert result["hits"] == 1
    assert result["encoder"] == ("OnnxEncoder" if encoder == "onnx" else "TorchEncoder")
    if encoder == "onnx":
        assert result["loaded"] == []
    else:
        assert "torch" in result["loaded"]
    if fresh_cache:
        assert len(list((tmp_path / "encoder").glob("all-MiniLM-L6-v2-*.onnx"))) == 1


def test_int8_encoder_stays_within_cosine_099(encoders: tuple[Embedder, Embedder]) -> None:
    _, torch = encoders
    int8 = Embedder(backend="onnx-int8")
    assert isinstance(int8.model, OnnxEncoder)
    assert int8.model.onnx_file.name.endswith("-int8.onnx")
    texts = demo_chunks(torch.count_tokens)
    assert float((int8.encode(texts) * torch.encode(texts)).sum(axis=1).min()) >= 0.99


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoder"):
        Embedder(backend="tensorflow")  # type: ignore[arg-type]
