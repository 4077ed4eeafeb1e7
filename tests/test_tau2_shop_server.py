"""The example τ²-bench shop (examples/tau2_shop) as a real separate process.

The MCP face is driven with the official SDK's client (mcp 2.x: `mcp.Client` over
`StdioServerParameters` and over `streamable_http_client`), the REST face with httpx. Each test
has its own database file in tmp_path, created by the server from τ²-bench's retail db.json.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from examples.tau2_shop import store as shop
from tests.shop_server import ROOT, SEED, Served, _command

pytestmark = pytest.mark.slow

if not SEED.is_file():
    pytest.skip(f"τ²-bench retail data not found at {SEED}", allow_module_level=True)

TOKEN = "test-token-7"
READS = {
    "find_user_id_by_email",
    "find_user_id_by_name_zip",
    "get_user_details",
    "get_order_details",
    "get_product_details",
    "list_all_product_types",
    "calculate",  # beyond τ²'s thirteen, for supportbot's extra_tools
}
CHANGES = {
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
    "request_callback",  # beyond τ²'s thirteen
}
PROCESSED_ORDER = "#W2611340"  # status 'processed' in db.json


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    return json.loads(SEED.read_text())


def _pending_gift_card_order(seed: dict[str, Any]) -> str:
    return next(
        order_id
        for order_id, order in seed["orders"].items()
        if order["status"] == "pending"
        and len(order["payment_history"]) == 1
        and order["payment_history"][0]["payment_method_id"].startswith("gift_card_")
    )


def _pending_card_order(seed: dict[str, Any]) -> str:
    return next(
        order_id
        for order_id, order in seed["orders"].items()
        if order["status"] == "pending"
        and order["payment_history"][0]["payment_method_id"].startswith("credit_card_")
    )


def _stdio(db: Path, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=_command("mcp", db)[1:], cwd=ROOT, env=env
    )


def _run(body: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        with anyio.fail_after(60):
            return await body()

    return anyio.run(bounded)


def _text(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


# --- MCP over stdio ------------------------------------------------------------------------------


def test_stdio_tools_records_changes_and_refusals(tmp_path: Path, seed: dict[str, Any]) -> None:
    db = tmp_path / "shop.json"
    order_id = _pending_gift_card_order(seed)
    order = seed["orders"][order_id]
    gift_card = order["payment_history"][0]["payment_method_id"]
    balance = seed["users"][order["user_id"]]["payment_methods"][gift_card]["balance"]

    async def body() -> None:
        async with Client(_stdio(db), read_timeout_seconds=30) as client:
            listed = await client.list_tools()
            tools = {tool.name: tool for tool in listed.tools}
            assert set(tools) == READS | CHANGES
            for name in READS:
                annotations = tools[name].annotations
                assert annotations is not None and annotations.read_only_hint is True
            for name in CHANGES:
                annotations = tools[name].annotations
                assert annotations is not None
                assert annotations.read_only_hint is False
                assert annotations.destructive_hint is True
            schema = tools["modify_pending_order_items"].input_schema
            assert schema["properties"]["item_ids"]["type"] == "array"
            assert schema["properties"]["item_ids"]["items"] == {"type": "string"}
            assert set(schema["required"]) == {
                "order_id",
                "item_ids",
                "new_item_ids",
                "payment_method_id",
            }

            # A read answers the record exactly as in db.json, as JSON text.
            result = await client.call_tool("get_order_details", {"order_id": PROCESSED_ORDER})
            assert result.is_error is False
            assert json.loads(_text(result)) == seed["orders"][PROCESSED_ORDER]

            user = seed["users"][order["user_id"]]
            result = await client.call_tool("find_user_id_by_email", {"email": user["email"]})
            assert (result.is_error, _text(result)) == (False, order["user_id"])
            result = await client.call_tool("list_all_product_types", {})
            types = json.loads(_text(result))
            assert len(types) == len(seed["products"]) and list(types) == sorted(types)

            # A refusal is a tool error with τ²'s message; nothing changes.
            result = await client.call_tool(
                "cancel_pending_order", {"order_id": PROCESSED_ORDER, "reason": "no longer needed"}
            )
            assert (result.is_error, _text(result)) == (
                True,
                "Error: Non-pending order cannot be cancelled",
            )
            result = await client.call_tool(
                "cancel_pending_order", {"order_id": order_id, "reason": "changed my mind"}
            )
            assert (result.is_error, _text(result)) == (True, "Error: Invalid reason")
            result = await client.call_tool("get_order_details", {"order_id": "#W0000000"})
            assert (result.is_error, _text(result)) == (True, "Error: Order not found")

            # The change: cancelled, refunded, the gift card credited, and on disk.
            result = await client.call_tool(
                "cancel_pending_order", {"order_id": order_id, "reason": "ordered by mistake"}
            )
            assert result.is_error is False
            cancelled = json.loads(_text(result))
            assert cancelled["status"] == "cancelled"
            assert cancelled["cancel_reason"] == "ordered by mistake"
            payment = order["payment_history"][0]
            assert cancelled["payment_history"] == [
                payment,
                {**payment, "transaction_type": "refund"},
            ]
            on_disk = json.loads(db.read_text())
            assert on_disk["orders"][order_id] == cancelled
            credited = on_disk["users"][order["user_id"]]["payment_methods"][gift_card]["balance"]
            assert credited == round(balance + payment["amount"], 2)

            result = await client.call_tool(
                "cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}
            )
            assert (result.is_error, _text(result)) == (
                True,
                "Error: Non-pending order cannot be cancelled",
            )

    _run(body)
    assert json.loads(db.read_text())["orders"][PROCESSED_ORDER] == seed["orders"][PROCESSED_ORDER]


def test_stdio_crash_after_the_change_and_delay(tmp_path: Path, seed: dict[str, Any]) -> None:
    """TAU2_SHOP_CRASH_ON: the change is written, the caller hears only that the connection died."""
    db = tmp_path / "shop.json"
    order_id = _pending_card_order(seed)
    env = {
        "TAU2_SHOP_CRASH_ON": "cancel_pending_order",
        "TAU2_SHOP_DELAY_SECONDS": "0.4",
        "TAU2_SHOP_DELAY_TOOLS": "get_order_details",
    }

    async def body() -> None:
        async with Client(_stdio(db, env), read_timeout_seconds=30) as client:
            started = time.monotonic()
            await client.call_tool("get_order_details", {"order_id": order_id})
            assert time.monotonic() - started >= 0.4
            started = time.monotonic()
            await client.call_tool(
                "get_user_details", {"user_id": seed["orders"][order_id]["user_id"]}
            )
            assert time.monotonic() - started < 0.4
            with pytest.raises(MCPError, match="Connection closed"):
                await client.call_tool(
                    "cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}
                )

    _run(body)
    assert json.loads(db.read_text())["orders"][order_id]["status"] == "cancelled"


# --- MCP over Streamable HTTP --------------------------------------------------------------------


def test_http_needs_the_token_and_answers_like_stdio(
    serve: Callable[..., Served], tmp_path: Path, seed: dict[str, Any]
) -> None:
    db = tmp_path / "shop.json"
    served = serve("mcp", db, "--transport", "http", env={"TAU2_SHOP_TOKEN": TOKEN})
    url = served.url + "/mcp"
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    assert httpx.post(url, json=initialize, headers=headers).status_code == 401
    wrong = {**headers, "authorization": "Bearer nope"}
    assert httpx.post(url, json=initialize, headers=wrong).status_code == 401

    order_id = _pending_gift_card_order(seed)

    async def body() -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for mode in ("auto", "legacy"):  # 2026-07-28 and the initialize handshake (2025-11-25)
            async with (
                httpx2.AsyncClient(headers=auth) as http,
                Client(streamable_http_client(url, http_client=http), mode=mode) as client,
            ):
                listed = await client.list_tools()
                assert {tool.name for tool in listed.tools} == READS | CHANGES
                result = await client.call_tool("get_order_details", {"order_id": PROCESSED_ORDER})
                assert json.loads(_text(result)) == seed["orders"][PROCESSED_ORDER]
        async with (
            httpx2.AsyncClient(headers=auth) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            result = await client.call_tool(
                "cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}
            )
            assert result.is_error is False
            assert json.loads(_text(result))["status"] == "cancelled"
            result = await client.call_tool(
                "cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"}
            )
            assert (result.is_error, _text(result)) == (
                True,
                "Error: Non-pending order cannot be cancelled",
            )

    _run(body)
    assert json.loads(db.read_text())["orders"][order_id]["status"] == "cancelled"


# --- REST ------------------------------------------------------------------------------------------


def test_rest_answers_the_same(
    serve: Callable[..., Served], tmp_path: Path, seed: dict[str, Any]
) -> None:
    db = tmp_path / "shop.json"
    api = serve("rest", db, "--token", TOKEN).url
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{api}/orders/%23W2611340").status_code == 401

    with httpx.Client(base_url=api, headers=auth) as http:
        answer = http.get("/orders/%23W2611340")
        assert (answer.status_code, answer.json()) == (200, seed["orders"][PROCESSED_ORDER])
        order_id = _pending_gift_card_order(seed)
        order = seed["orders"][order_id]
        user = seed["users"][order["user_id"]]
        assert http.get("/users", params={"email": user["email"]}).json() == {
            "user_id": order["user_id"]
        }
        found = http.get(
            "/users",
            params={
                "first_name": user["name"]["first_name"].upper(),
                "last_name": user["name"]["last_name"],
                "zip": user["address"]["zip"],
            },
        )
        assert found.json() == {"user_id": order["user_id"]}
        missing = http.get("/users", params={"email": "nobody@example.com"})
        assert (missing.status_code, missing.json()) == (404, {"error": "User not found"})
        assert http.get(f"/users/{order['user_id']}").json() == user
        product_id = order["items"][0]["product_id"]
        assert http.get(f"/products/{product_id}").json() == seed["products"][product_id]
        assert http.get("/products").json()[seed["products"][product_id]["name"]] == product_id

        refused = http.post("/orders/%23W2611340/cancel", json={"reason": "no longer needed"})
        assert (refused.status_code, refused.json()) == (
            409,
            {"error": "Non-pending order cannot be cancelled"},
        )
        bad = http.post("/orders/%23W2611340/cancel", json={})
        assert bad.status_code == 422
        path = "/orders/" + order_id.replace("#", "%23")
        cancelled = http.post(f"{path}/cancel", json={"reason": "no longer needed"})
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["payment_history"][-1]["transaction_type"] == "refund"
        assert json.loads(db.read_text())["orders"][order_id] == cancelled.json()

        address = {
            "address1": "1 Test Way",
            "address2": "",
            "city": "Austin",
            "state": "TX",
            "country": "USA",
            "zip": "73301",
        }
        moved = http.post(f"/users/{order['user_id']}/address", json=address)
        assert (moved.status_code, moved.json()["address"]) == (200, address)


def test_rest_faults(serve: Callable[..., Served], tmp_path: Path, seed: dict[str, Any]) -> None:
    env = {
        "TAU2_SHOP_MALFORMED": "get_order_details",
        "TAU2_SHOP_HUGE": "get_user_details",
    }
    api = serve("rest", tmp_path / "shop.json", env=env).url
    malformed = httpx.get(f"{api}/orders/%23W2611340").json()
    assert "user_id" not in malformed and "status" not in malformed
    assert malformed["order_id"] == PROCESSED_ORDER
    huge = httpx.get(f"{api}/users/{seed['orders'][PROCESSED_ORDER]['user_id']}", timeout=30)
    assert len(huge.content) > 5_000_000


def test_two_processes_on_one_file_lose_no_write(
    serve: Callable[..., Served], tmp_path: Path, seed: dict[str, Any]
) -> None:
    db = tmp_path / "shop.json"
    apis = [serve("rest", db).url, serve("rest", db).url]
    users = list(seed["users"])[:16]

    def change(api: str, user_ids: list[str]) -> None:
        with httpx.Client(base_url=api, timeout=30) as http:
            for user_id in user_ids:
                address = {
                    "address1": f"{user_id} street",
                    "address2": "",
                    "city": "Testville",
                    "state": "TX",
                    "country": "USA",
                    "zip": "00000",
                }
                assert http.post(f"/users/{user_id}/address", json=address).status_code == 200

    threads = [
        threading.Thread(target=change, args=(apis[0], users[0::2])),
        threading.Thread(target=change, args=(apis[1], users[1::2])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    on_disk = json.loads(db.read_text())
    assert [on_disk["users"][u]["address"]["address1"] for u in users] == [
        f"{u} street" for u in users
    ]
    # Each server reads the other's writes.
    for api in apis:
        assert (
            httpx.get(f"{api}/users/{users[0]}").json()["address"]["address1"]
            == f"{users[0]} street"
        )


# --- the τ² semantics of the other changes, in process ---------------------------------------------


def test_store_changes_follow_tau2(tmp_path: Path, seed: dict[str, Any]) -> None:
    store = shop.Store(tmp_path / "shop.json", seed=SEED)

    def refused(message: str, tool: str, **arguments: Any) -> None:
        with pytest.raises(shop.ToolFailure) as failure:
            store.call(tool, **arguments)
        assert failure.value.text == f"Error: {message}"

    # Items of a pending order: same product, price difference to the gift card.
    order_id = _pending_gift_card_order(seed)
    order = seed["orders"][order_id]
    item = order["items"][0]
    product = seed["products"][item["product_id"]]
    new_id, variant = min(
        (
            (vid, v)
            for vid, v in product["variants"].items()
            if vid != item["item_id"] and v["available"]
        ),
        key=lambda pair: pair[1]["price"],
    )
    gift_card = order["payment_history"][0]["payment_method_id"]
    balance = seed["users"][order["user_id"]]["payment_methods"][gift_card]["balance"]
    difference = round(variant["price"] - item["price"], 2)
    refused(
        "The new item id should be different from the old item id",
        "modify_pending_order_items",
        order_id=order_id,
        item_ids=[item["item_id"]],
        new_item_ids=[item["item_id"]],
        payment_method_id=gift_card,
    )
    if difference > balance:
        refused(
            "Insufficient gift card balance to pay for the new item",
            "modify_pending_order_items",
            order_id=order_id,
            item_ids=[item["item_id"]],
            new_item_ids=[new_id],
            payment_method_id=gift_card,
        )
    else:
        changed = store.call(
            "modify_pending_order_items",
            order_id=order_id,
            item_ids=[item["item_id"]],
            new_item_ids=[new_id],
            payment_method_id=gift_card,
        )
        assert changed["status"] == "pending (item modified)"
        assert changed["items"][0] == {
            **item,
            "item_id": new_id,
            "price": variant["price"],
            "options": variant["options"],
        }
        assert changed["payment_history"][-1] == {
            "transaction_type": "payment" if difference > 0 else "refund",
            "amount": abs(difference),
            "payment_method_id": gift_card,
        }
        user = store.call("get_user_details", user_id=order["user_id"])
        assert user["payment_methods"][gift_card]["balance"] == round(balance - difference, 2)
        refused(
            "Non-pending order cannot be modified",
            "modify_pending_order_items",
            order_id=order_id,
            item_ids=[new_id],
            new_item_ids=[item["item_id"]],
            payment_method_id=gift_card,
        )

    # The payment of a pending order: a payment with the new method, a refund to the old one.
    card_order_id = _pending_card_order(seed)
    card_order = seed["orders"][card_order_id]
    methods = seed["users"][card_order["user_id"]]["payment_methods"]
    old = card_order["payment_history"][0]
    refused(
        "The new payment method should be different from the current one",
        "modify_pending_order_payment",
        order_id=card_order_id,
        payment_method_id=old["payment_method_id"],
    )
    refused(
        "Payment method not found",
        "modify_pending_order_payment",
        order_id=card_order_id,
        payment_method_id="credit_card_0000000",
    )
    other = next(
        (m for m in methods if m != old["payment_method_id"] and not m.startswith("gift_card_")),
        None,
    )
    if other is not None:
        paid = store.call(
            "modify_pending_order_payment", order_id=card_order_id, payment_method_id=other
        )
        assert paid["payment_history"][1:] == [
            {"transaction_type": "payment", "amount": old["amount"], "payment_method_id": other},
            {**old, "transaction_type": "refund"},
        ]

    # A delivered order: a return, then nothing more.
    delivered_id, delivered = next(
        (oid, o) for oid, o in seed["orders"].items() if o["status"] == "delivered"
    )
    original = delivered["payment_history"][0]["payment_method_id"]
    refused(
        "Non-pending order cannot be cancelled",
        "cancel_pending_order",
        order_id=delivered_id,
        reason="no longer needed",
    )
    refused(
        "Some item not found",
        "return_delivered_order_items",
        order_id=delivered_id,
        item_ids=["0000000000"],
        payment_method_id=original,
    )
    item_ids = [i["item_id"] for i in delivered["items"]][::-1]
    returned = store.call(
        "return_delivered_order_items",
        order_id=delivered_id,
        item_ids=item_ids,
        payment_method_id=original,
    )
    assert returned["status"] == "return requested"
    assert returned["return_items"] == sorted(item_ids)
    assert returned["return_payment_method_id"] == original
    refused(
        "Non-delivered order cannot be exchanged",
        "exchange_delivered_order_items",
        order_id=delivered_id,
        item_ids=item_ids,
        new_item_ids=item_ids,
        payment_method_id=original,
    )

    # An exchange on another delivered order: the price difference recorded, not charged.
    exchange_id, exchange = next(
        (oid, o)
        for oid, o in seed["orders"].items()
        if o["status"] == "delivered"
        and oid != delivered_id
        and any(
            record["source"] != "gift_card"
            for record in seed["users"][o["user_id"]]["payment_methods"].values()
        )
    )
    item = exchange["items"][0]
    new_id, variant = next(
        (vid, v)
        for vid, v in seed["products"][item["product_id"]]["variants"].items()
        if vid != item["item_id"] and v["available"]
    )
    user_methods = seed["users"][exchange["user_id"]]["payment_methods"]
    method = next(m for m, record in user_methods.items() if record["source"] != "gift_card")
    exchanged = store.call(
        "exchange_delivered_order_items",
        order_id=exchange_id,
        item_ids=[item["item_id"]],
        new_item_ids=[new_id],
        payment_method_id=method,
    )
    assert exchanged["status"] == "exchange requested"
    assert exchanged["exchange_items"] == [item["item_id"]]
    assert exchanged["exchange_new_items"] == [new_id]
    assert exchanged["exchange_price_difference"] == round(variant["price"] - item["price"], 2)
    assert exchanged["payment_history"] == exchange["payment_history"]

    # Everything above is on disk, and nothing else changed there.
    on_disk = json.loads((tmp_path / "shop.json").read_text())
    assert on_disk["orders"][exchange_id] == exchanged
    assert on_disk["orders"][delivered_id] == returned
    assert on_disk["products"] == seed["products"]
