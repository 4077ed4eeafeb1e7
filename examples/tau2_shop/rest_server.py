"""The shop as a plain REST JSON API (Starlette on uvicorn).

    GET  /users?email=E                          -> {"user_id": ...}  (find_user_id_by_email)
    GET  /users?first_name=F&last_name=L&zip=Z   -> {"user_id": ...}  (find_user_id_by_name_zip)
    GET  /users/{user_id}                        -> the user record
    GET  /orders/{order_id}                      -> the order record ('#' sent as %23)
    GET  /products                               -> {name: product_id}, sorted by name
    GET  /products/{product_id}                  -> the product record
    POST /orders/{order_id}/cancel    {reason}
    POST /orders/{order_id}/address   {address1, address2, city, state, country, zip}
    POST /orders/{order_id}/items     {item_ids, new_item_ids, payment_method_id}
    POST /orders/{order_id}/payment   {payment_method_id}
    POST /orders/{order_id}/return    {item_ids, payment_method_id}
    POST /orders/{order_id}/exchange  {item_ids, new_item_ids, payment_method_id}
    POST /users/{user_id}/address     {address1, address2, city, state, country, zip}

A change answers the updated record (200). A refusal answers `{"error": <τ²'s message>}` (without
τ²'s "Error: " prefix) with 404 (the order, user or product is not there), 409 (the order is not in
a state that allows it, or a gift card is short) or 422 (the arguments are wrong). Records are
exactly as in db.json. The tool names of the faults (`TAU2_SHOP_CRASH_ON=cancel_pending_order`...)
are τ²'s, as in the list above.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples.tau2_shop.runtime import BearerGate, Faults, run_tool
from examples.tau2_shop.store import Store, ToolFailure

log = logging.getLogger("tau2_shop.rest")

ADDRESS: dict[str, type] = {
    name: str for name in ("address1", "address2", "city", "state", "country", "zip")
}

# POST /orders/{order_id}/<action>: the tool and the body it takes.
ORDER_ACTIONS: dict[str, tuple[str, dict[str, type]]] = {
    "cancel": ("cancel_pending_order", {"reason": str}),
    "address": ("modify_pending_order_address", ADDRESS),
    "items": (
        "modify_pending_order_items",
        {"item_ids": list, "new_item_ids": list, "payment_method_id": str},
    ),
    "payment": ("modify_pending_order_payment", {"payment_method_id": str}),
    "return": ("return_delivered_order_items", {"item_ids": list, "payment_method_id": str}),
    "exchange": (
        "exchange_delivered_order_items",
        {"item_ids": list, "new_item_ids": list, "payment_method_id": str},
    ),
}


class BadRequest(Exception):
    pass


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request, fields: dict[str, type]) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise BadRequest("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    arguments: dict[str, Any] = {}
    for name, kind in fields.items():
        value = body.get(name)
        if kind is str and not isinstance(value, str):
            raise BadRequest(f"'{name}' must be a string")
        if kind is list and not (
            isinstance(value, list) and all(isinstance(item, str) for item in value)
        ):
            raise BadRequest(f"'{name}' must be a list of strings")
        arguments[name] = value
    return arguments


def build_app(store: Store, faults: Faults | None = None, token: str | None = None) -> BearerGate:
    faults = faults if faults is not None else Faults()

    async def answer(tool: str, **arguments: Any) -> JSONResponse:
        try:
            result = await run_tool(store, faults, tool, arguments)
        except ToolFailure as failure:
            return _error(failure.message, failure.status)
        return JSONResponse(faults.shape(tool, result, rest=True))

    async def find_user(request: Request) -> JSONResponse:
        query = request.query_params
        if "email" in query:
            return await answer("find_user_id_by_email", email=query["email"])
        if all(name in query for name in ("first_name", "last_name", "zip")):
            return await answer(
                "find_user_id_by_name_zip",
                first_name=query["first_name"],
                last_name=query["last_name"],
                zip=query["zip"],
            )
        return _error("give email, or first_name, last_name and zip", 422)

    async def get_user(request: Request) -> JSONResponse:
        return await answer("get_user_details", user_id=request.path_params["user_id"])

    async def get_order(request: Request) -> JSONResponse:
        return await answer("get_order_details", order_id=request.path_params["order_id"])

    async def list_products(request: Request) -> JSONResponse:
        return await answer("list_all_product_types")

    async def get_product(request: Request) -> JSONResponse:
        return await answer("get_product_details", product_id=request.path_params["product_id"])

    async def change_order(request: Request) -> JSONResponse:
        action = ORDER_ACTIONS.get(request.path_params["action"])
        if action is None:
            return _error("unknown action", 404)
        tool, fields = action
        try:
            arguments = await _body(request, fields)
        except BadRequest as exc:
            return _error(str(exc), 422)
        return await answer(tool, order_id=request.path_params["order_id"], **arguments)

    async def change_user_address(request: Request) -> JSONResponse:
        try:
            arguments = await _body(request, ADDRESS)
        except BadRequest as exc:
            return _error(str(exc), 422)
        return await answer(
            "modify_user_address", user_id=request.path_params["user_id"], **arguments
        )

    app = Starlette(
        routes=[
            Route("/users", find_user, methods=["GET"]),
            Route("/users/{user_id}", get_user, methods=["GET"]),
            Route("/users/{user_id}/address", change_user_address, methods=["POST"]),
            Route("/orders/{order_id}", get_order, methods=["GET"]),
            Route("/orders/{order_id}/{action}", change_order, methods=["POST"]),
            Route("/products", list_products, methods=["GET"]),
            Route("/products/{product_id}", get_product, methods=["GET"]),
        ]
    )
    return BearerGate(app, token)


def run(
    store: Store,
    faults: Faults,
    *,
    host: str,
    port: int,
    token: str | None,
    log_level: str = "info",
) -> None:
    app = build_app(store, faults, token)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=log_level.lower())
    log.info("REST on http://%s:%d", host, port)
    uvicorn.Server(config).run()
