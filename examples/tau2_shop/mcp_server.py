"""The shop as an MCP server (the official SDK's `MCPServer`), over stdio or Streamable HTTP.

Thirteen tools with τ²-bench's retail names and arguments. A tool answers one `TextContent`
with τ²'s text: the record as JSON, or the bare user id for the two lookups. A refusal is a
tool error (`isError: true`) whose text is τ²'s ("Error: Non-pending order cannot be cancelled").
The reads carry `readOnlyHint: true`; the changes `readOnlyHint: false, destructiveHint: true`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from examples.tau2_shop.runtime import BearerGate, Faults, run_tool
from examples.tau2_shop.store import Store, ToolFailure, to_text

log = logging.getLogger("tau2_shop.mcp")

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Every change is final through this API (nothing undoes a cancellation or a return request).
# Repeating an address change with the same arguments changes nothing more; repeating any other
# change is refused (the order is no longer in the state it needs).
CHANGE = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)
CHANGE_IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)

OrderId = Annotated[
    str, Field(description="The order id, such as '#W0000000' (it begins with '#').")
]
UserId = Annotated[str, Field(description="The user id, such as 'sara_doe_496'.")]
ProductId = Annotated[
    str, Field(description="The product id, such as '6086499569' (not an item id).")
]
ItemIds = Annotated[
    list[str],
    Field(description="Item ids, each such as '1008292230'; an id may appear more than once."),
]
NewItemIds = Annotated[
    list[str],
    Field(
        description="The new item ids, one for each item id in the same position, each of the "
        "same product as the item it replaces."
    ),
]
PaymentMethodId = Annotated[
    str,
    Field(
        description="A payment method id of the order's user, such as 'gift_card_0000000' or "
        "'credit_card_0000000'."
    ),
]
Address1 = Annotated[
    str, Field(description="The first line of the address, such as '123 Main St'.")
]
Address2 = Annotated[str, Field(description="The second line, such as 'Apt 1', or ''.")]
City = Annotated[str, Field(description="The city, such as 'San Francisco'.")]
State = Annotated[str, Field(description="The state, such as 'CA'.")]
Country = Annotated[str, Field(description="The country, such as 'USA'.")]
Zip = Annotated[str, Field(description="The zip code, such as '12345'.")]


def build_server(store: Store, faults: Faults | None = None) -> MCPServer:
    faults = faults if faults is not None else Faults()
    server: MCPServer = MCPServer(
        "tau2-shop",
        title="τ²-bench retail shop",
        version="1.0.0",
        instructions="A retail store's orders, users and products, with τ²-bench retail's tools. "
        "The server does not check who is asking.",
    )

    async def answer(tool: str, **arguments: Any) -> CallToolResult:
        try:
            result = await run_tool(store, faults, tool, arguments)
        except ToolFailure as failure:
            return CallToolResult(
                content=[TextContent(type="text", text=failure.text)], is_error=True
            )
        text = to_text(faults.shape(tool, result))
        return CallToolResult(content=[TextContent(type="text", text=text)])

    _beyond_tau2(server, answer)

    @server.tool(annotations=READ)
    async def find_user_id_by_email(
        email: Annotated[
            str, Field(description="The user's email, such as 'someone@example.com'.")
        ],
    ) -> CallToolResult:
        """Find a user id by email. Answers the user id as plain text, or an error if none."""
        return await answer("find_user_id_by_email", email=email)

    @server.tool(annotations=READ)
    async def find_user_id_by_name_zip(
        first_name: Annotated[str, Field(description="The first name, such as 'John'.")],
        last_name: Annotated[str, Field(description="The last name, such as 'Doe'.")],
        zip: Zip,
    ) -> CallToolResult:
        """Find a user id by first name, last name and zip code (use this only when the user
        cannot be found by email). Answers the user id as plain text, or an error if none."""
        return await answer(
            "find_user_id_by_name_zip", first_name=first_name, last_name=last_name, zip=zip
        )

    @server.tool(annotations=READ)
    async def get_user_details(user_id: UserId) -> CallToolResult:
        """Get a user's details, including their payment methods and order ids, as JSON."""
        return await answer("get_user_details", user_id=user_id)

    @server.tool(annotations=READ)
    async def get_order_details(order_id: OrderId) -> CallToolResult:
        """Get the status and details of an order, as JSON."""
        return await answer("get_order_details", order_id=order_id)

    @server.tool(annotations=READ)
    async def get_product_details(product_id: ProductId) -> CallToolResult:
        """Get a product's inventory details (its variants, their options, availability and
        prices), as JSON."""
        return await answer("get_product_details", product_id=product_id)

    @server.tool(annotations=READ)
    async def list_all_product_types() -> CallToolResult:
        """List the name and product id of every product type, as a JSON object mapping names
        to product ids, sorted by name."""
        return await answer("list_all_product_types")

    @server.tool(annotations=CHANGE)
    async def cancel_pending_order(
        order_id: OrderId,
        reason: Annotated[
            str, Field(description="Either 'no longer needed' or 'ordered by mistake'.")
        ],
    ) -> CallToolResult:
        """Cancel a pending order (not one already processed or delivered). Every payment is
        refunded: at once to a gift card, in 5-7 business days otherwise. Ask the user for an
        explicit yes first. Answers the order after the cancellation, as JSON."""
        return await answer("cancel_pending_order", order_id=order_id, reason=reason)

    @server.tool(annotations=CHANGE_IDEMPOTENT)
    async def modify_pending_order_address(
        order_id: OrderId,
        address1: Address1,
        address2: Address2,
        city: City,
        state: State,
        country: Country,
        zip: Zip,
    ) -> CallToolResult:
        """Change the shipping address of a pending order. Ask the user for an explicit yes
        first. Answers the order after the change, as JSON."""
        return await answer(
            "modify_pending_order_address",
            order_id=order_id,
            address1=address1,
            address2=address2,
            city=city,
            state=state,
            country=country,
            zip=zip,
        )

    @server.tool(annotations=CHANGE)
    async def modify_pending_order_items(
        order_id: OrderId,
        item_ids: ItemIds,
        new_item_ids: NewItemIds,
        payment_method_id: PaymentMethodId,
    ) -> CallToolResult:
        """Change items of a pending order to other items of the same product; the price
        difference is paid with, or refunded to, the payment method given. This can be done only
        once for an order. Ask the user for an explicit yes first. Answers the order after the
        change, as JSON."""
        return await answer(
            "modify_pending_order_items",
            order_id=order_id,
            item_ids=item_ids,
            new_item_ids=new_item_ids,
            payment_method_id=payment_method_id,
        )

    @server.tool(annotations=CHANGE)
    async def modify_pending_order_payment(
        order_id: OrderId, payment_method_id: PaymentMethodId
    ) -> CallToolResult:
        """Pay a pending order with another payment method of its user; the old one is
        refunded. Ask the user for an explicit yes first. Answers the order after the change, as
        JSON."""
        return await answer(
            "modify_pending_order_payment", order_id=order_id, payment_method_id=payment_method_id
        )

    @server.tool(annotations=CHANGE_IDEMPOTENT)
    async def modify_user_address(
        user_id: UserId,
        address1: Address1,
        address2: Address2,
        city: City,
        state: State,
        country: Country,
        zip: Zip,
    ) -> CallToolResult:
        """Change a user's default address. Ask the user for an explicit yes first. Answers the
        user after the change, as JSON."""
        return await answer(
            "modify_user_address",
            user_id=user_id,
            address1=address1,
            address2=address2,
            city=city,
            state=state,
            country=country,
            zip=zip,
        )

    @server.tool(annotations=CHANGE)
    async def return_delivered_order_items(
        order_id: OrderId,
        item_ids: ItemIds,
        payment_method_id: Annotated[
            str,
            Field(
                description="Where the refund goes: the order's original payment method or a "
                "gift card of the user."
            ),
        ],
    ) -> CallToolResult:
        """Request the return of items of a delivered order; its status becomes 'return
        requested' and the user gets an email on how to send them back. A delivered order can be
        returned or exchanged only once. Ask the user for an explicit yes first. Answers the
        order after the request, as JSON."""
        return await answer(
            "return_delivered_order_items",
            order_id=order_id,
            item_ids=item_ids,
            payment_method_id=payment_method_id,
        )

    @server.tool(annotations=CHANGE)
    async def exchange_delivered_order_items(
        order_id: OrderId,
        item_ids: ItemIds,
        new_item_ids: NewItemIds,
        payment_method_id: PaymentMethodId,
    ) -> CallToolResult:
        """Request the exchange of items of a delivered order for other items of the same
        product; its status becomes 'exchange requested'. A delivered order can be returned or
        exchanged only once. Ask the user for an explicit yes first. Answers the order after the
        request, as JSON."""
        return await answer(
            "exchange_delivered_order_items",
            order_id=order_id,
            item_ids=item_ids,
            new_item_ids=new_item_ids,
            payment_method_id=payment_method_id,
        )

    return server


def _beyond_tau2(server: MCPServer, answer: Any) -> None:
    """Two tools τ²'s thirteen do not have, as a shop's server would offer besides: what
    supportbot's `extra_tools` may hand the model (one read, one change)."""

    @server.tool(annotations=READ)
    async def calculate(
        expression: Annotated[str, Field(description="Arithmetic, such as '(12.5 + 3) * 2'.")],
    ) -> CallToolResult:
        """Calculate an arithmetic expression (numbers, + - * / and parentheses), rounded to
        two decimals."""
        return await answer("calculate", expression=expression)  # type: ignore[no-any-return]

    @server.tool(annotations=CHANGE_IDEMPOTENT)
    async def request_callback(
        user_id: UserId,
        phone: Annotated[str, Field(description="The phone number to call back.")],
    ) -> CallToolResult:
        """Ask the shop's team to call the user back at a phone number. Answers the user."""
        return await answer("request_callback", user_id=user_id, phone=phone)  # type: ignore[no-any-return]


def run_stdio(server: MCPServer) -> None:
    server.run("stdio")


def http_app(
    server: MCPServer, *, host: str, token: str | None, json_response: bool = False
) -> Any:
    """The Streamable HTTP app (at `/mcp`) behind the bearer-token gate."""
    app = server.streamable_http_app(
        streamable_http_path="/mcp", host=host, json_response=json_response
    )
    return BearerGate(app, token)


def run_http(
    server: MCPServer,
    *,
    host: str,
    port: int,
    token: str | None,
    json_response: bool = False,
    log_level: str = "info",
) -> None:
    app = http_app(server, host=host, token=token, json_response=json_response)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=log_level.lower())
    log.info("MCP (Streamable HTTP) on http://%s:%d/mcp", host, port)
    uvicorn.Server(config).run()
