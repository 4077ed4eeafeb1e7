"""Ingest: every format, incremental and idempotent, replace, prune, and per-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from ingest import chunker
from ingest.chunker import chunk_document
from ingest.loaders.markdown import load_markdown, load_markdown_text
from ingest.pipeline import ingest
from kb import KnowledgeBase
from tests.conftest import write
from tests.pdf_fixture import write_pdf

DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"

MARKDOWN = """---
title: Returns and refunds
url: https://help.example/returns
category: returns
audience: customers
---
# Returns and refunds

Intro paragraph about returns.

## Damaged items

If an item arrives damaged, send a photo within 7 days and we replace it free of charge.

## Refund timing

Card refunds take 5 to 7 business days after we receive the parcel.
"""

HTML = """<html><head><title>Kettle guide | Acme Help</title>
<style>.x{color:red}</style><script>var tracking = "SCRIPT-LEAK";</script>
<link rel="canonical" href="https://help.example/kettle"></head>
<body><nav><a href="/">Home</a> NAV-LEAK</nav>
<main><h1>Kettle guide</h1><h2>Descaling</h2><p>Boil a mix of water and vinegar, then rinse twice.</p>
<h2>Safety</h2><ul><li>Never immerse the base in water.</li></ul></main>
<footer>FOOTER-LEAK copyright</footer></body></html>"""


def _chunks(kb: KnowledgeBase) -> list[tuple[str, str, dict]]:
    return kb.store.all()


def test_markdown_front_matter_and_heading_paths(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = write(tmp_path / "docs" / "returns.md", MARKDOWN)
    report = ingest(kb, [path])
    assert report.ok and report.added == [str(path.resolve())]
    rows = _chunks(kb)
    sections = {m["section"] for _, _, m in rows}
    assert {"Damaged items", "Refund timing"} <= sections
    meta = next(m for _, t, m in rows if "photo" in t)
    assert meta["title"] == "Returns and refunds" and meta["url"] == "https://help.example/returns"
    assert meta["category"] == "returns" and meta["audience"] == "customers"
    assert meta["format"] == "markdown"


def test_chunks_are_embedded_with_their_title_and_section(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    path = write(tmp_path / "returns.md", MARKDOWN)
    chunks = chunk_document(load_markdown(path)[0])
    damaged = next(c for c in chunks if "photo" in c.text)
    assert damaged.embed_text == f"Returns and refunds > Damaged items: {damaged.text}"
    ingest(kb, [path])
    stored = kb.store.collection.get(where={"section": "Damaged items"}, include=["embeddings"])
    (vector,) = stored["embeddings"]
    assert float(kb.embedder.encode([damaged.embed_text])[0] @ vector) > 0.999


def test_a_faq_text_file_is_split_into_its_questions(kb: KnowledgeBase, tmp_path: Path) -> None:
    faq = write(tmp_path / "faq.txt", "SHOP HELP - FAQ\n\n"
                "Q: Which payment methods do you accept?\nA: Credit cards and PayPal.\n\n"
                "Q: Do you ship abroad?\nA: Only within the US.\n")  # fmt: skip
    ingest(kb, [faq])
    sections = {m["section"]: t for _, t, m in _chunks(kb)}
    assert sections["Do you ship abroad?"] == "Q: Do you ship abroad?\nA: Only within the US."
    assert set(sections) == {"", "Which payment methods do you accept?", "Do you ship abroad?"}
    (hit,) = kb.search("can I pay with paypal", k=1)
    assert hit.section == "Which payment methods do you accept?"
    plain = write(tmp_path / "notes.txt", "Q: this line is not followed by an answer\nStore hours.")
    ingest(kb, [plain])
    assert [m["section"] for _, _, m in _chunks(kb) if m["source"] == str(plain.resolve())] == [""]


def test_a_new_chunk_format_re_embeds_an_existing_index_on_the_next_ingest(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.md", MARKDOWN)
    write(docs / "b.html", HTML)
    first = ingest(kb, [docs])

    def bracketed(text: str, title: str, section: str, breadcrumb: str = "") -> str:
        return f"[{breadcrumb} / {title} / {section}] {text}"

    monkeypatch.setattr(chunker, "context_text", bracketed)
    upgraded = ingest(kb, [docs])
    assert upgraded.chunks_embedded == first.chunks_embedded and len(upgraded.updated) == 2
    assert ingest(kb, [docs]).chunks_embedded == 0  # then incremental again
    (hit,) = kb.search("my parcel arrived broken", k=1)
    assert hit.section == "Damaged items"
    assert kb.documents()[str((docs / "a.md").resolve())].doc_hash.startswith("2+")


def test_html_keeps_main_text_only(kb: KnowledgeBase, tmp_path: Path) -> None:
    ingest(kb, [write(tmp_path / "kettle.html", HTML)])
    rows = _chunks(kb)
    text = " ".join(t for _, t, _ in rows)
    assert "vinegar" in text and "Never immerse" in text
    assert not any(leak in text for leak in ("SCRIPT-LEAK", "NAV-LEAK", "FOOTER-LEAK", "color:red"))
    meta = rows[0][2]
    assert meta["title"] == "Kettle guide" and meta["url"] == "https://help.example/kettle"
    assert {m["section"] for _, _, m in rows} == {"Descaling", "Safety"}


def test_pdf_pages_and_plain_text(kb: KnowledgeBase, tmp_path: Path) -> None:
    pdf = write_pdf(
        tmp_path / "warranty.pdf",
        [["Warranty", "Chairs carry a two year warranty."], ["Claims need the serial number."]],
        title="Chair warranty",
    )
    txt = write(tmp_path / "faq.txt", "Q: Do you ship abroad?\nA: Only within the US.\n")
    report = ingest(kb, [pdf, txt])
    assert report.ok and len(report.added) == 2
    pages = {m["page"]: t for _, t, m in _chunks(kb) if m["format"] == "pdf"}
    assert "two year" in pages[1] and "serial number" in pages[2]
    hits = kb.search("do you deliver outside the United States?", k=1)
    assert hits and hits[0].title == "Faq" and "Only within the US" in hits[0].text


def test_jsonl_records_are_documents_and_bad_lines_are_reported(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "doc_1", "title": "Overdraft fees", "content": "## Fees\nThe overdraft fee is $35.", "url": "https://bank.example/od"}),
        "{not json",
        json.dumps({"id": "doc_2", "title": "Card freeze", "content": "## Freezing\nFreeze a card in the app."}),
        json.dumps({"title": "no id", "content": "x"}),
    ]  # fmt: skip
    path = write(tmp_path / "kb.jsonl", "\n".join(lines))
    report = ingest(kb, [path])
    assert sorted(report.added) == ["doc_1", "doc_2"]
    assert any("line 2" in e for e in report.errors) and any(
        "line 4: missing id" in e for e in report.errors
    )
    docs = kb.documents()
    assert docs["doc_1"].url == "https://bank.example/od" and docs["doc_1"].origin == str(
        path.resolve()
    )


def test_a_record_is_embedded_with_its_place_in_the_help_centre(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    """A page's title often does not name its product ("Security: Dual Authorization"); the
    words of a readable id, or the record's own breadcrumb, do, and go into the chunk header."""
    dual = "## Threshold\nDual authorization is required above $10,000."
    lines = [
        json.dumps({"id": "doc_business_checking_accounts_beige_005", "title": "Security", "content": dual}),
        json.dumps({"id": "8f14e45f-ceea-467f-a8f5-3c2b9a5e1d07", "title": "Security", "content": dual}),
        json.dumps({"id": "a1", "title": "Security", "content": dual, "breadcrumb": ["Cards", "Gold card"]}),
    ]  # fmt: skip
    ingest(kb, [write(tmp_path / "kb.jsonl", "\n".join(lines))])
    crumbs = {m["source"]: m.get("breadcrumb") for _, _, m in _chunks(kb)}
    assert crumbs == {
        "doc_business_checking_accounts_beige_005": "business checking accounts beige",
        "8f14e45f-ceea-467f-a8f5-3c2b9a5e1d07": None,  # no words in a UUID
        "a1": "Cards > Gold card",
    }
    (hit,) = kb.search("do payments from our Beige account need two approvers?", k=1)
    assert hit.source == "doc_business_checking_accounts_beige_005"
    assert hit.text == "Dual authorization is required above $10,000."  # the header is not shown


def test_a_long_table_is_cut_between_rows_and_each_piece_keeps_its_header() -> None:
    rows = "\n".join(f"| Plan {n} | {n} business days | ${n}.99 per parcel |" for n in range(60))
    body = f"## Options\n\n| Plan | Delivery time | Cost |\n|---|---|---|\n{rows}\n"
    path_free = load_markdown_text(body, source="s", origin="s", fallback_title="Shipping")
    chunks = chunk_document(path_free, max_tokens=120, overlap_tokens=20)
    assert len(chunks) > 3
    for chunk in chunks:
        lines = chunk.text.splitlines()
        assert lines[:2] == ["| Plan | Delivery time | Cost |", "|---|---|---|"]
        assert all(line.startswith("| Plan ") and line.endswith("|") for line in lines[2:])
    cut = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert sorted(set(cut)) == sorted(rows.splitlines())  # every row whole, none lost


def test_a_long_list_is_cut_between_items_after_its_introduction() -> None:
    items = "\n".join(
        f"{n}. Step {n}: open the app and check the setting\n   - and its detail {n}"
        for n in range(1, 40)
    )
    doc = load_markdown_text(
        f"## Steps\n\nTo set it up:\n{items}\n", source="s", origin="s", fallback_title="Guide"
    )
    chunks = chunk_document(doc, max_tokens=100, overlap_tokens=0)
    assert len(chunks) > 3
    for chunk in chunks:
        lines = chunk.text.splitlines()
        assert (
            lines[0] == "To set it up:" and lines[1][0].isdigit() and lines[-1].startswith("   -")
        )


def test_a_table_that_fits_is_never_cut(kb: KnowledgeBase) -> None:
    """'How long does shipping take?' gets the shipping options table, whole, and not the
    page's introduction, which shares more of the question's words ("how long it takes") but
    answers nothing."""
    ingest(kb, [DEMO_DOCS])
    (table,) = [t for _, t, m in _chunks(kb) if m["section"] == "Shipping options"]
    assert "| Overnight | 1 business day | $29.99 |" in table
    hits = kb.search("How long does shipping take?", k=4)
    assert [h.section for h in hits[:2]] == ["Shipping options", "Processing times"]
    assert hits[0].text == table and "" not in [h.section for h in hits]


def test_second_ingest_of_an_unchanged_corpus_embeds_nothing(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.md", MARKDOWN)
    write(docs / "b.html", HTML)
    first = ingest(kb, [docs])
    second = ingest(kb, [docs])
    assert first.chunks_embedded > 0 and len(first.added) == 2
    assert second.chunks_embedded == 0 and second.unchanged == 2 and not second.added
    assert len(_chunks(kb)) == first.chunks_embedded


def test_changed_document_replaces_its_chunks(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = write(tmp_path / "returns.md", MARKDOWN)
    ingest(kb, [path])
    before = len(_chunks(kb))
    write(path, "---\ntitle: Returns\n---\n## Window\nReturns are accepted for 60 days.\n")
    report = ingest(kb, [path])
    rows = _chunks(kb)
    assert report.updated == [str(path.resolve())] and len(rows) == 1 < before
    assert "60 days" in rows[0][1] and not any("photo" in t for _, t, _ in rows)


def test_prune_removes_documents_that_disappeared(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    keep = write(docs / "keep.md", MARKDOWN)
    gone = write(docs / "gone.html", HTML)
    other = write(tmp_path / "elsewhere" / "other.txt", "Store hours are 9 to 5.")
    ingest(kb, [docs, other])
    gone.unlink()
    without_prune = ingest(kb, [docs])
    assert str(gone.resolve()) in kb.documents() and not without_prune.removed
    report = ingest(kb, [docs], prune=True)
    sources = set(kb.documents())
    assert report.removed == [str(gone.resolve())]
    # Documents outside the given paths are not touched.
    assert sources == {str(keep.resolve()), str(other.resolve())}


def test_broken_files_are_reported_while_the_rest_ingests(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write(docs / "good.md", MARKDOWN)
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (docs / "latin1.txt").write_bytes("caf\xe9 ol\xe9".encode("latin-1"))
    write(docs / "empty.md", "---\ntitle: Empty\n---\n")
    report = ingest(kb, [docs, tmp_path / "missing-folder"])
    errors = "\n".join(report.errors)
    assert "corrupt.pdf: corrupt or unreadable PDF" in errors
    assert "latin1.txt: not UTF-8 text" in errors
    assert "empty.md: empty document" in errors
    assert "missing-folder: no such file or directory" in errors
    assert [Path(s).name for s in report.added] == ["good.md"]


def test_a_file_that_fails_to_parse_is_not_pruned(kb: KnowledgeBase, tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "docs" / "manual.pdf", [["Assembly takes ten minutes."]])
    ingest(kb, [tmp_path / "docs"])
    pdf.write_bytes(b"garbage")
    report = ingest(kb, [tmp_path / "docs"], prune=True)
    assert not report.ok and report.removed == []
    assert str(pdf.resolve()) in kb.documents()


def test_cli_ingest_list_search_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    docs = tmp_path / "docs"
    path = write(docs / "returns.md", MARKDOWN)
    (docs / "bad.pdf").write_bytes(b"nope")

    result = runner.invoke(app, ["ingest", str(docs)])
    assert result.exit_code == 1  # one file failed...
    assert "bad.pdf: corrupt or unreadable PDF" in result.output
    assert "added 1" in result.output  # ...and the other still went in

    listed = json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout)
    assert [d["title"] for d in listed] == ["Returns and refunds"]
    found = json.loads(
        runner.invoke(app, ["kb", "search", "my parcel arrived broken", "--json"]).stdout
    )
    assert found and found[0]["section"] == "Damaged items"
    stats = json.loads(runner.invoke(app, ["kb", "stats"]).stdout)
    assert stats["documents"] == 1 and stats["chunks"] >= 2

    deleted = runner.invoke(app, ["kb", "delete", str(path.resolve())])
    assert deleted.exit_code == 0
    assert json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout) == []
    missing = runner.invoke(app, ["kb", "delete", "nope"])
    assert missing.exit_code == 1 and "no document" in missing.output
