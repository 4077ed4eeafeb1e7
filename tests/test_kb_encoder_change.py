"""A changed embedding model: the index names the model of its vectors, a search refuses to
compare another model's query with them, and the next ingest (or `supportbot kb reindex`)
re-embeds every chunk into a fresh collection and says so. Vectors of two models are never
mixed in one index."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Settings
from ingest.pipeline import ingest
from kb import KnowledgeBase
from kb.knowledge_base import EncoderMismatch
from tests.conftest import write


class WordsEncoder:
    """A stand-in encoder: hashed bag of words, named and sized as a test needs."""

    def __init__(self, name: str, dims: int) -> None:
        self.name = name
        self.dims = dims
        self.model_path = ""
        self.batch_size = 64

    def encode(self, texts: list[str]) -> np.ndarray[Any, Any]:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dims] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-9, None)

    encode_queries = encode

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def _open(data: Path, encoder: WordsEncoder) -> KnowledgeBase:
    kb = KnowledgeBase.open(Settings(data_dir=data), embedder=encoder)  # type: ignore[arg-type]
    kb.config = type(kb.config)(**{**kb.config.__dict__, "dense_threshold": 0.1})
    return kb


def _docs(folder: Path) -> Path:
    write(folder / "returns.md", "---\ntitle: Returns\n---\n## Damaged items\n"
          "If an item arrives damaged, send a photo within 7 days and we replace it.\n")  # fmt: skip
    write(folder / "shipping.md", "---\ntitle: Shipping\n---\n## Options\n"
          "Standard shipping takes 3 to 5 business days; overnight takes 1.\n")  # fmt: skip
    return folder


def test_a_new_encoder_refuses_an_old_index_until_it_is_re_embedded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs = _docs(tmp_path / "docs")
    other = write(tmp_path / "elsewhere" / "hours.md", "## Hours\nThe shop opens at 9 am daily.\n")
    old = _open(data, WordsEncoder("words-64", 64))
    ingest(old, [docs])
    ingest(old, [other])
    assert old.index_model() == "words-64" and old.search("item arrived damaged photo")

    new = _open(data, WordsEncoder("words-32", 32))
    assert new.encoder_mismatch() and new.stats()["reindex_needed"] is True
    with pytest.raises(EncoderMismatch, match=r"holds vectors of words-64.*kb reindex"):
        new.search("item arrived damaged photo")

    report = ingest(new, [docs])
    assert report.reindexed and "held vectors of words-64" in report.reindexed
    # The documents given were embedded anew; the one from elsewhere was re-embedded from the
    # index (its file is not read); every vector now has the new model's 32 dimensions.
    assert sorted(Path(s).name for s in report.added) == ["returns.md", "shipping.md"]
    stored = new.store.collection.get(include=["embeddings", "metadatas"])
    assert {len(v) for v in stored["embeddings"]} == {32}
    assert {Path(m["source"]).name for m in stored["metadatas"]} == {
        "returns.md", "shipping.md", "hours.md",
    }  # fmt: skip
    assert new.index_model() == "words-32" and new.encoder_mismatch() is None
    assert new.search("item arrived damaged photo")[0].title == "Returns"
    assert new.search("when does the shop open")[0].section == "Hours"
    assert ingest(new, [docs]).reindexed is None  # once


def test_a_re_embedding_interrupted_before_its_swap_is_finished_at_the_next_open(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    kb = _open(data, WordsEncoder("words-64", 64))
    ingest(kb, [_docs(tmp_path / "docs")])
    rows = kb.store.all()
    # Stopped after the new collection was filled and the old one dropped, before the rename.
    staging = kb.store._client.create_collection(
        "kb_chunks__rebuilding",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
    )
    staging.upsert(
        ids=[i for i, _, _ in rows],
        embeddings=WordsEncoder("words-32", 32).encode([t for _, t, _ in rows]),
        documents=[t for _, t, _ in rows],
        metadatas=[m for _, _, m in rows],
    )
    staging.modify(metadata={"revision": 9, "embedding_model": "words-32"})
    kb.store._client.delete_collection("kb_chunks")
    reopened = _open(data, WordsEncoder("words-32", 32))
    assert reopened.index_model() == "words-32" and reopened.store.count() == len(rows)
    assert reopened.search("overnight shipping days")[0].title == "Shipping"


def test_cli_reindex_re_embeds_the_index_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(_docs(tmp_path / "docs"))]).exit_code == 0
    stats = json.loads(runner.invoke(app, ["kb", "stats"]).stdout)
    assert stats["index_embedding_model"] == stats["embedding_model"] == "all-MiniLM-L6-v2"
    # An index another model wrote (as a future encoder change would leave it).
    kb = KnowledgeBase.open(Settings(data_dir=tmp_path / "data"))
    kb.store._bump("some-other-model")
    refused = runner.invoke(app, ["kb", "search", "my parcel arrived broken"])
    assert refused.exit_code == 1 and "run `supportbot kb reindex`" in refused.output
    assert json.loads(runner.invoke(app, ["kb", "stats"]).stdout)["reindex_needed"] is True

    done = runner.invoke(app, ["kb", "reindex"])
    assert done.exit_code == 0, done.output
    assert "re-embedded 2 chunks with all-MiniLM-L6-v2 (the index held some-other-model)" in (
        " ".join(done.output.split())
    )
    found = json.loads(
        runner.invoke(app, ["kb", "search", "item arrived damaged", "--json"]).stdout
    )
    assert found and found[0]["section"] == "Damaged items"
