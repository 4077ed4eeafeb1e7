"""Retrieval quality guards, the knowledge-base tool, cited answers, and Chroma server mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import Settings
from agent.engine.events import Outcome
from agent.runtime import Runtime, build_runtime
from ingest.pipeline import ingest
from kb import Hit, KnowledgeBase
from tests.chroma_server import ChromaServer, start_chroma
from tests.conftest import RETAIL_SLICE, SettingsFactory, write
from tests.fake_anthropic import FakeAnthropic, system_text, text, tool_use

DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"
PARTS = [
    "hinge",
    "gasket",
    "filter",
    "spring",
    "latch",
    "valve",
    "knob",
    "bracket",
    "wheel",
    "cable",
]


def _parts_corpus(folder: Path) -> Path:
    """Look-alike part codes, and one code in a passage about something else entirely."""
    for i, part in enumerate(PARTS):
        code = f"QX-{7700 + i * 3}-{chr(65 + i)}"
        write(folder / f"part{i}.md", f"---\ntitle: Spare {part}\n---\n## Part {code}\n"
              f"Replacement {part} for kitchen appliances, part {code}. Order from the parts desk.\n")  # fmt: skip
    write(folder / "reel.md", "---\ntitle: Garden hose reel\n---\n## Mounting\n"
          "The wall bracket kit QX-7731-B includes four screws and fits brick or wood walls.\n")  # fmt: skip
    return folder


def test_hybrid_search_finds_an_exact_code_that_dense_search_misses(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    ingest(kb, [_parts_corpus(tmp_path / "parts")])
    dense = kb.search("QX-7731-B", k=3, mode="dense")
    hybrid = kb.search("QX-7731-B", k=3)
    assert "Garden hose reel" not in [h.title for h in dense]
    assert hybrid[0].title == "Garden hose reel" and "QX-7731-B" in hybrid[0].text


def test_unrelated_questions_find_nothing(kb: KnowledgeBase) -> None:
    ingest(kb, [DEMO_DOCS])
    assert kb.search("who won the football world cup in 2018?") == []
    assert kb.search("give me a recipe for banana bread") == []
    assert kb.search("how do I descale the kettle?")[0].section == "Descaling"


def test_a_question_in_other_words_than_the_heading_finds_its_section(
    kb: KnowledgeBase,
) -> None:
    ingest(kb, [DEMO_DOCS])
    asked = {
        "the wheels on my chair are clogged with hair": (
            "Office Chair Assembly and Care Guide",
            "Cleaning > Base and casters",
        ),
        "how do I get the old rubber ring out of the lid": (
            "Water Bottle Care Guide",
            "Lid seal replacement (part WB-SEAL-07) > How to replace the seal",
        ),
        "do gift cards expire?": ("Faq", "How do Acme gift cards work?"),
    }
    for question, (title, section) in asked.items():
        (hit,) = kb.search(question, k=1)
        assert (hit.title, hit.section) == (title, section), question


def test_misspelt_questions_find_what_the_spelt_ones_find(kb: KnowledgeBase) -> None:
    ingest(kb, [DEMO_DOCS])

    def found(query: str) -> list[tuple[str, str, float]]:
        return [(h.source, h.section, h.score) for h in kb.search(query, k=3)]

    assert found("how do i retrun something i bought 2 weeks ago") == found(
        "how do i return something i bought 2 weeks ago"
    )
    assert found("whats the warrenty on the electric kettle") == found(
        "whats the warranty on the electric kettle"
    )
    assert kb.search("I moved house, can you send my order to my new adress?", k=1)[0].section in (
        "How do I change my shipping address?",
        "Changing a delivery address",
    )
    # Real words are never "corrected" into the help centre's words: off-topic stays off-topic.
    assert kb.search("how do I bake sourdough bread") == []


def test_british_spellings_and_split_words_match_the_help_pages(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    write(tmp_path / "docs" / "kettle.md", "---\ntitle: Kettle\n---\n## Colors\n"
          "The kettle comes in three colors: white, silver and black.\n")  # fmt: skip
    write(tmp_path / "docs" / "account.md", "---\ntitle: Your account\n---\n## Email\n"
          "Update your email address under My Account > Profile.\n")  # fmt: skip
    ingest(kb, [tmp_path / "docs"])
    (colour,) = kb.search("which colours are available?", k=1)
    (email,) = kb.search("where is the e-mail setting", k=1)
    assert colour.section == "Colors" and colour.lexical_score
    assert email.section == "Email" and email.lexical_score


def test_hits_carry_their_source(kb: KnowledgeBase) -> None:
    ingest(kb, [DEMO_DOCS])
    (hit,) = kb.search("how long does a refund to my credit card take", k=1)
    assert hit.title == "Returns, Exchanges and Refunds"
    assert hit.url == "https://help.acme.example/returns-and-refunds"
    assert hit.source.endswith("returns-and-refunds.md") and hit.section and 0 < hit.score <= 1
    filtered = kb.search("refund", k=5, filters={"category": "shipping"})
    assert filtered and {h.metadata["category"] for h in filtered} == {"shipping"}


def test_many_searches_at_once_find_what_one_search_each_finds(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(kb, [DEMO_DOCS])
    queries = [
        "how do I descale the kettle?",
        "My parcel is late, where is it?",
        "  ",
        "who won the football world cup in 2018?",
        "EK-1500 warranty",
        "can I return a chair I already assembled",
    ]
    one_by_one = [kb.search(q, k=3) for q in queries]
    encoded: list[int] = []
    encode = kb.embedder.encode_queries
    monkeypatch.setattr(
        kb.embedder, "encode_queries", lambda texts: encoded.append(len(texts)) or encode(texts)
    )
    together = kb.search_many(queries, k=3)

    def key(hits: list[Hit]) -> list[tuple[str, str, str, float]]:
        return [(h.source, h.section, h.text, h.score) for h in hits]

    assert [key(h) for h in together] == [key(h) for h in one_by_one]
    assert together[2] == [] and together[3] == [] and together[0][0].section == "Descaling"
    assert encoded == [5]  # one encoder call for the five non-empty queries


@pytest.fixture
def kb_runtime(make_settings: SettingsFactory) -> Runtime:
    runtime = build_runtime(make_settings())
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    from agent.store.importer import import_path

    import_path(runtime.engine, RETAIL_SLICE)
    return runtime


def test_the_tool_returns_numbered_cited_passages_and_the_reply_carries_them(
    kb_runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "replacement lid seal for water bottle"}),
        text("Order the WB-SEAL-07 seal pack, which fits every Water Bottle [1]."),
    )
    conversation = kb_runtime.agent.start_conversation()
    result = kb_runtime.agent.ask(conversation, "My bottle leaks, can I get a new seal?")

    block = fake.bodies[1]["messages"][-1]["content"][0]
    assert block["type"] == "tool_result" and not block.get("is_error")
    payload = json.loads(block["content"])
    first = payload["results"][0]
    assert payload["found"] and first["source"] == 1 and "WB-SEAL-07" in json.dumps(payload)
    assert first["url"] == "https://help.acme.example/manual-water-bottle"
    assert [r["source"] for r in payload["results"]] == list(range(1, len(payload["results"]) + 1))
    (citation,) = result.citations
    assert citation.number == 1 and citation.title == "Water Bottle Care Guide"
    assert citation.url == "https://help.acme.example/manual-water-bottle"
    # Passages only ever reach the model inside tool_result blocks, never in the system prompt.
    assert "WB-SEAL-07" not in system_text(fake.bodies[1])


def test_the_tool_says_when_nothing_is_relevant(kb_runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "football world cup winner"}),
        text("I don't know, but I can connect you with a colleague."),
    )
    result = kb_runtime.agent.ask(kb_runtime.agent.start_conversation(), "Who won the world cup?")
    payload = json.loads(fake.bodies[1]["messages"][-1]["content"][0]["content"])
    assert payload["found"] is False and "don't know" in payload["message"]
    assert result.citations == []


def test_a_question_in_another_language_is_searched_in_english_too(
    kb_runtime: Runtime, fake: FakeAnthropic
) -> None:
    """Claude is asked for the question in the help centre's language as well as in the
    customer's words; the English question finds what the Spanish one alone does not."""
    spanish = "¿cuánto cuesta el envío urgente de un día para otro?"
    kb = kb_runtime.agent.kb
    assert kb is not None
    alone = kb.search(spanish, k=4)
    assert not alone or alone[0].section != "Shipping options"
    schema = next(
        t for t in kb_runtime.agent.tools.schemas() if t["name"] == "search_knowledge_base"
    )
    assert "query_in_english" in schema["input_schema"]["properties"]
    assert "query_in_english" not in schema["input_schema"].get("required", [])
    fake.enqueue(
        tool_use(
            "search_knowledge_base",
            {"query": spanish, "query_in_english": "how much does overnight shipping cost?"},
        ),
        text("El envío urgente (Overnight) cuesta 29,99 $ [1]."),
    )
    result = kb_runtime.agent.ask(kb_runtime.agent.start_conversation(), spanish)
    payload = json.loads(fake.bodies[1]["messages"][-1]["content"][0]["content"])
    assert payload["found"] and payload["results"][0]["section"] == "Shipping options"
    assert "$29.99" in payload["results"][0]["text"] and "language_note" not in payload
    assert result.citations[0].title == "Shipping and Delivery"
    # The tool's guidance tells Claude to give the English question and answer in the
    # customer's language.
    assert "query_in_english" in system_text(fake.bodies[0])


def test_the_tool_notes_a_search_in_other_words_than_the_help_centres(
    kb_runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "wie lange dauert der Versand nach Hause?"}),
        text("..."),
    )
    kb_runtime.agent.ask(kb_runtime.agent.start_conversation(), "wie lange dauert der Versand?")
    payload = json.loads(fake.bodies[1]["messages"][-1]["content"][0]["content"])
    assert "query_in_english" in payload["language_note"]


def test_offline_model_shows_the_table_that_answers_how_long_shipping_takes(
    make_settings: SettingsFactory,
) -> None:
    runtime = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    reply = runtime.agent.ask(
        runtime.agent.start_conversation(), "How long does shipping take?"
    ).reply
    assert "Most orders are processed within 1–2 business days" in reply
    assert "| Standard | 3–5 business days |" in reply and "| Overnight | 1 business day |" in reply
    assert "Sources: [1] Shipping and Delivery > Shipping options" in reply
    assert "[2] Shipping and Delivery > Processing times" in reply
    assert "This page explains" not in reply  # the page's introduction answers nothing


def test_offline_model_says_it_searches_in_english(make_settings: SettingsFactory) -> None:
    runtime = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    asked = runtime.agent.ask(
        runtime.agent.start_conversation(), "¿cuánto tiempo tarda el envío a mi casa?"
    )
    # In Spanish: the offline model answers in the customer's language (offline_phrases.py).
    assert "(Modo sin conexión:" in asked.reply
    assert "Busco en nuestro centro de ayuda en inglés" in asked.reply
    english = runtime.agent.ask(runtime.agent.start_conversation(), "How do I descale my kettle?")
    assert "in English" not in english.reply


def test_offline_model_answers_policy_questions_from_the_kb(
    make_settings: SettingsFactory,
) -> None:
    runtime = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    result = runtime.agent.ask(runtime.agent.start_conversation(), "How do I descale my kettle?")
    assert result.outcome == Outcome.ANSWERED and "Offline mode" in result.reply
    assert "vinegar" in result.reply.lower() or "descal" in result.reply.lower()
    assert "Source: [1] Electric Kettle (EK-1500) User Manual > Descaling" in result.reply
    assert [c.title for c in result.citations] == ["Electric Kettle (EK-1500) User Manual"]


def test_an_unreachable_chroma_server_degrades_to_an_error_result(
    make_settings: SettingsFactory, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = build_runtime(make_settings(chroma_url="http://127.0.0.1:9"))
    fake.enqueue(tool_use("search_knowledge_base", {"query": "returns"}), text("Sorry."))
    result = runtime.agent.ask(runtime.agent.start_conversation(), "What is your return policy?")
    block = fake.bodies[1]["messages"][-1]["content"][0]
    assert block["is_error"] and "unavailable" in block["content"]
    assert result.reply == "Sorry." and "knowledge base" in caplog.text


@pytest.fixture(scope="session")
def chroma_server() -> Iterator[ChromaServer]:
    server = start_chroma()
    yield server
    server.stop()


@pytest.mark.slow
def test_chroma_server_mode(chroma_server: ChromaServer, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_server.url,
                        kb_collection=f"test_{tmp_path.name[-20:]}")  # fmt: skip
    kb = KnowledgeBase.open(settings)
    report = ingest(kb, [DEMO_DOCS])
    assert report.ok and len(report.added) == 7
    assert not (tmp_path / "data" / "chroma").exists()  # nothing embedded locally
    # A second process (a new client) sees the same index, lexical part included.
    other = KnowledgeBase.open(settings)
    hits = other.search("OC-GL-22", k=1)
    assert (
        hits
        and "OC-GL-22" in hits[0].text
        and hits[0].title == "Office Chair Assembly and Care Guide"
    )
    assert ingest(other, [DEMO_DOCS]).chunks_embedded == 0
