"""What a search shows: a short section whole (a table cut into pieces for the index comes
back as one table, once), a long section by its chunk; and the guess of a question's language
that lets a search say it looked in English."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.chunker import approximate_tokens, split_text
from ingest.pipeline import ingest
from kb import KnowledgeBase
from kb.language import guess_language
from kb.passages import merge_chunks
from tests.conftest import write

BENCH = Path(__file__).resolve().parents[1] / "bench" / "data"

FEES = "\n".join(
    f"| {name} | ${fee}.00 | {when} |"
    for name, fee, when in [
        ("Domestic wire", 25, "per outgoing transfer"),
        ("International wire", 45, "per outgoing transfer, plus the correspondent bank's fee"),
        ("Incoming wire", 15, "per incoming transfer"),
        ("Stop payment", 30, "per request, by phone or in the app"),
        ("Cashier's check", 10, "per check, at a branch"),
        ("Paper statement", 3, "per month, when e-statements are off"),
        ("Overdraft", 35, "per item paid into overdraft, at most three a day"),
        ("Returned item", 35, "per item returned unpaid"),
        ("Replacement card", 5, "per card after the first each year"),
        ("Expedited card", 25, "per card delivered in two business days"),
        ("Account research", 20, "per hour, one hour minimum"),
        ("Dormant account", 5, "per month after 12 months without activity"),
    ]
)
PAGE = f"""---
title: Checking fees
---
## Fee schedule

Every fee of the Everyday checking account, and when it is charged:

| Service | Fee | When |
|---|---|---|
{FEES}

## History

{" ".join(["The bank was founded in 1921 by a cooperative of farmers in the valley."] * 40)}
"""


def test_a_table_cut_for_the_index_is_shown_whole_and_once(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    ingest(kb, [write(tmp_path / "fees.md", PAGE)])
    pieces = [t for _, t, m in kb.store.all() if m["section"] == "Fee schedule"]
    assert len(pieces) >= 2  # the table is longer than a chunk: cut between its rows
    hits = kb.search("how much is an international wire transfer?", k=4)
    schedule = [h for h in hits if h.section == "Fee schedule"]
    assert len(schedule) == 1  # once, though several of its chunks were found
    (table,) = schedule
    assert table.text.startswith("Every fee of the Everyday checking account")
    assert table.text.count("| Service | Fee | When |") == 1 and FEES in table.text
    # A long section shows the chunk that was found, not the whole section.
    (history,) = kb.search("when was the bank founded and by whom?", k=1)
    assert history.section == "History" and len(history.text) < len(PAGE) / 2


def test_chunks_merge_back_into_the_text_they_were_cut_from() -> None:
    text = (
        "Intro.\n\nSecond paragraph with a few words.\n\n| A | B |\n|---|---|\n"
        + "\n".join(f"| row {i} with words | value {i} |" for i in range(30))
        + "\n\nFees:\n"
        + "\n".join(f"- item {i} costs money" for i in range(25))
        + "\n\nLast paragraph."
    )
    for size, overlap in [(30, 0), (40, 10), (60, 20), (100, 30)]:
        chunks = split_text(text, size, overlap, approximate_tokens)
        assert len(chunks) > 2 and merge_chunks(chunks) == text


def test_the_language_of_a_question_is_guessed_for_the_four_languages() -> None:
    rows = [json.loads(line) for line in (BENCH / "banking_tune_i18n.jsonl").open()]
    rows += [json.loads(line) for line in (BENCH / "offtopic_i18n.jsonl").open()]
    for lang in ("en", "es", "de", "fr"):
        guessed = [guess_language(r[lang]) for r in rows]
        assert guessed.count(lang) >= 0.95 * len(rows), lang
        assert not [g for g in guessed if g and g != lang], lang  # unsure, never wrong
    assert guess_language("warranty") == ""  # a word is not a sentence
