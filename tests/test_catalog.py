"""The product catalog: import, variant filtering, and the product_info tool."""

from __future__ import annotations

import json

import pytest

from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.tables import Conversation
from tests.conftest import FIXTURES, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use, tool_uses
from tools.tool_context import ToolContext


def _call(runtime: Runtime, **args: object) -> tuple[bool, dict | str]:
    conversation = runtime.agent.start_conversation()  # anonymous: catalog data is public
    with transaction(runtime.engine) as session:
        assert session.get(Conversation, conversation) is not None
        ctx = ToolContext(session, runtime.settings, conversation, None, runtime.orders(session))
        outcome = runtime.agent.tools.run("product_info", args, ctx)
    return outcome.is_error, outcome.content if outcome.is_error else json.loads(outcome.content)


def test_products_import_with_their_variants_idempotently(offline_runtime: Runtime) -> None:
    again = import_path(offline_runtime.engine, RETAIL_SLICE)
    assert again.products.unchanged == 3 and again.products.created == 0


def test_question_text_finds_the_product_and_filters_variants(offline_runtime: Runtime) -> None:
    error, data = _call(offline_runtime, query="Is the 1000ml water bottle in stock in blue?")
    assert not error
    (product,) = data["products"]
    assert product["name"] == "Water Bottle"
    assert product["filters"] == {"capacity": "1000ml", "color": "blue"}
    assert product["matching_variants"] == 2 and product["available_variants"] == 0
    assert {v["options"]["material"] for v in product["variants"]} == {"glass", "stainless steel"}
    assert "blue" in product["option_values"]["color"]


def test_explicit_options_and_availability(offline_runtime: Runtime) -> None:
    _, data = _call(offline_runtime, query="Electric Kettle", options={"material": "glass"},
                    available_only=True)  # fmt: skip
    (kettle,) = data["products"]
    assert kettle["variants"] and all(v["available"] for v in kettle["variants"])
    assert all(v["options"]["material"] == "glass" for v in kettle["variants"])
    # Nothing like it: not a failure, and not the whole catalog either.
    error, data = _call(offline_runtime, query="a flux capacitor")
    assert not error and data["products"] == [] and data["suggestions"] == []
    assert "No product in the catalog matches" in data["note"] and "candidates" not in data


def test_claude_can_call_product_info_without_verification(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("product_info", {"query": "office chair", "options": {"color": "black"}}),
                 text("Yes, the black office chair is available."))  # fmt: skip
    result = runtime.agent.ask(
        runtime.agent.start_conversation(), "Do you have the office chair in black?"
    )
    block = fake.bodies[1]["messages"][-1]["content"][0]
    assert not block.get("is_error")
    assert json.loads(block["content"])["products"][0]["filters"] == {"color": "black"}
    assert result.tool_calls[0].name == "product_info"


def test_offline_model_answers_a_stock_question(offline_runtime: Runtime) -> None:
    result = offline_runtime.agent.ask(
        offline_runtime.agent.start_conversation(),
        "Is the 1000ml glass water bottle available in blue?",
    )
    assert [c.name for c in result.tool_calls] == ["product_info"]
    assert (
        "Water Bottle (1000ml, glass, blue): 0 of 1 matching variants are in stock." in result.reply
    )
    assert "$47.84, out of stock" in result.reply


# -- the words customers use -------------------------------------------------------------------
# The whole τ²-bench retail catalogue: its 50 products, each with enough of its variants to
# have every option value (tests/fixtures/retail_catalog.json).
CATALOG = FIXTURES / "retail_catalog.json"


@pytest.fixture
def shop(make_settings: SettingsFactory) -> Runtime:
    built = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    report = import_path(built.engine, CATALOG)
    assert report.products.created == 50 and not report.problems
    return built


@pytest.mark.parametrize(
    ("query", "named"),
    [
        # partial names (the option named settles which kettle: only the electric one is white)
        ("is the kettle available in white?", "Electric Kettle"),
        ("is the Electric Kettle available in white?", "Electric Kettle"),
        ("is the security camera in stock?", "Indoor Security Camera"),
        ("how much is the tea kettle", "Tea Kettle"),
        ("do you have running shoes", "Running Shoes"),
        ("is the vacuum available?", "Vacuum Cleaner"),
        ("coffee machine price", "Coffee Maker"),
        ("bike helmet in red", "Cycling Helmet"),  # the helmet, not the bicycle
        # plurals, compounds written apart or together
        ("do you sell smartphones in black?", "Smartphone"),
        ("dumbbells", "Dumbbell Set"),
        ("do you have t shirts in red?", "T-Shirt"),
        ("t-shirt in XL?", "T-Shirt"),
        ("e reader with wifi", "E-Reader"),
        ("wrist watch with a leather strap", "Wristwatch"),
        ("smart watch colours", "Smart Watch"),
        ("lightbulb options", "LED Light Bulb"),
        # synonyms
        ("is the water boiler available in white?", "Electric Kettle"),
        ("do you have a phone with 128GB?", "Smartphone"),
        ("power bank 20000mAh", "Portable Charger"),
        # typing slips
        ("electirc kettle price", "Electric Kettle"),
        ("are the hedphones available?", "Headphones"),
        ("bluetooth speeker in red", "Bluetooth Speaker"),
        ("backpak", "Backpack"),
    ],
)
def test_products_are_found_by_the_words_customers_use(
    shop: Runtime, query: str, named: str
) -> None:
    error, data = _call(shop, query=query)
    assert not error and [p["name"] for p in data["products"]] == [named], data
    assert "candidates" not in data


@pytest.mark.parametrize(
    ("query", "candidates"),
    [
        ("do you have kettles?", ["Electric Kettle", "Tea Kettle"]),
        ("is the kettel in stock?", ["Electric Kettle", "Tea Kettle"]),
        ("is the kettle available in glass?", ["Electric Kettle", "Tea Kettle"]),  # both are
        ("do you sell cameras?", ["Action Camera", "Digital Camera", "Indoor Security Camera"]),
    ],
)
def test_several_matches_ask_which_one_with_a_short_list(
    shop: Runtime, query: str, candidates: list[str]
) -> None:
    error, data = _call(shop, query=query)
    assert not error and data["products"] == [] and data["candidates"] == candidates
    assert "ask the customer which one" in data["note"]


def test_nothing_matching_suggests_at_most_a_few_products(shop: Runtime) -> None:
    error, data = _call(shop, query="do you sell tea?")  # only a lesser word of a name
    assert not error and data["products"] == [] and data["suggestions"] == ["Tea Kettle"]
    for query in ("a flux capacitor", "I was charged twice"):  # "charged" is not a "charger"
        error, data = _call(shop, query=query)
        assert not error and data["products"] == [] and data["suggestions"] == []


def test_two_products_named_are_both_described(shop: Runtime) -> None:
    _, data = _call(shop, query="price of the water bottle and the office chair")
    assert [p["name"] for p in data["products"]] == ["Water Bottle", "Office Chair"]
    _, data = _call(shop, query="kettle and water bottle")  # one clear, one to ask about
    assert [p["name"] for p in data["products"]] == ["Water Bottle"]
    assert data["candidates"] == ["Electric Kettle", "Tea Kettle"]


def test_offline_model_words_partial_names_and_asks_which_one(shop: Runtime) -> None:
    agent = shop.agent
    white = agent.ask(agent.start_conversation(), "is the kettle available in white?")
    assert [(c.name, c.is_error) for c in white.tool_calls] == [("product_info", False)]
    assert "Electric Kettle (white): " in white.reply and "variants are in stock" in white.reply
    assert "Tea Kettle" not in white.reply and "couldn't" not in white.reply

    which = agent.ask(agent.start_conversation(), "Do you have kettles in stock?")
    assert not which.tool_calls[0].is_error
    assert "Which one do you mean: Electric Kettle or Tea Kettle?" in which.reply
    assert "Office Chair" not in which.reply  # a short list, not the catalog

    missing = agent.ask(agent.start_conversation(), "Do you sell tea?")
    assert "I couldn't find that in our catalog. Did you mean the Tea Kettle?" in missing.reply


def test_the_kettle_question_of_the_issue_on_the_demo_slice(offline_runtime: Runtime) -> None:
    """The slice sells one kettle: "the kettle" is it (once a red failure and a list of every
    product)."""
    result = offline_runtime.agent.ask(
        offline_runtime.agent.start_conversation(), "is the kettle available in white?"
    )
    assert not result.tool_calls[0].is_error
    assert "Electric Kettle (white): " in result.reply and "Water Bottle" not in result.reply


def test_claude_gets_the_candidates_to_ask_which_one(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    built = build_runtime(make_settings())
    import_path(built.engine, CATALOG)
    fake.enqueue(
        tool_uses(("product_info", {"query": "kettle"}),
                  ("product_info", {"query": "kettle", "options": {"color": "white"}})),
        text("Do you mean the Electric Kettle or the Tea Kettle?"),
    )  # fmt: skip
    result = built.agent.ask(built.agent.start_conversation(), "is the kettle available?")
    which, white = fake.bodies[1]["messages"][-1]["content"]
    assert not which.get("is_error") and not white.get("is_error")
    assert json.loads(which["content"])["candidates"] == ["Electric Kettle", "Tea Kettle"]
    (kettle,) = json.loads(white["content"])["products"]  # the option settles it
    assert kettle["name"] == "Electric Kettle" and kettle["filters"] == {"color": "white"}
    assert [c.is_error for c in result.tool_calls] == [False, False]
