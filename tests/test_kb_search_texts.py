"""Dense results take their texts from the lexical index's copy of the chunks (Chroma is asked
for ids and distances only); a chunk written since that copy was read is fetched from the store."""

from __future__ import annotations

from pathlib import Path

from agent.config import Settings
from kb import Chunk, KnowledgeBase


def chunk(source: str, n: int, title: str, text: str) -> Chunk:
    return Chunk(
        id=f"{source}#{n}",
        text=text,
        embed_text=f"{title}: {text}",
        metadata={"source": source, "title": title, "section": "", "origin": source},
    )


def add(kb: KnowledgeBase, source: str, title: str, text: str, *, tell_the_facade: bool) -> None:
    c = chunk(source, 0, title, text)
    vectors = kb.embedder.encode([c.embed_text])
    if tell_the_facade:
        kb.replace_documents([(source, [c])], vectors, new_sources={source})
    else:  # as another process's ingest would: this facade's copy is not told
        kb.store.replace_documents([(source, [c])], vectors, new_sources={source})


def test_hits_carry_texts_and_metadata_from_the_index(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(Settings(data_dir=tmp_path / "data"))
    add(kb, "kettle", "Electric Kettle", "Descale the kettle every four weeks with citric acid.",
        tell_the_facade=True)  # fmt: skip
    hits = kb.search("how often should I descale my kettle", k=1, mode="dense")
    assert [h.text for h in hits] == ["Descale the kettle every four weeks with citric acid."]
    assert hits[0].title == "Electric Kettle" and hits[0].source == "kettle"
    hits[0].metadata["title"] = "changed by a caller"
    again = kb.search("how often should I descale my kettle", k=1)
    assert again[0].title == "Electric Kettle"
    assert again[0].metadata["title"] == "Electric Kettle"


def test_a_chunk_written_by_another_process_is_fetched_with_its_text(tmp_path: Path) -> None:
    kb = KnowledgeBase.open(Settings(data_dir=tmp_path / "data"))
    add(kb, "kettle", "Electric Kettle", "Descale the kettle every four weeks with citric acid.",
        tell_the_facade=True)  # fmt: skip
    assert kb.search("descale kettle", k=1)  # the lexical copy is read now
    add(kb, "chair", "Office Chair", "A sinking seat needs a new gas-lift cylinder.",
        tell_the_facade=False)  # fmt: skip
    assert "chair#0" not in kb._lexical_meta  # the copy is read again at most every 2 s
    hits = kb.search("my office chair seat keeps sinking", k=1, mode="dense")
    assert [(h.source, h.text) for h in hits] == [
        ("chair", "A sinking seat needs a new gas-lift cylinder.")
    ]
    assert hits[0].title == "Office Chair"
