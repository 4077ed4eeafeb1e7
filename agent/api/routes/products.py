"""The product catalog for the desk (admin keys): a product with its variants, for the change
form's option pickers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from agent.api.deps import AdminDep, OrdersDep
from agent.api.errors import STAFF, responses
from agent.api.schemas import NO_NUL
from agent.errors import NotFound
from agent.store.catalog import ProductView, describe_product
from agent.store.tables import Product

router = APIRouter(tags=["products"])
ProductId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]


@router.get("/v1/products/{product_id}", response_model=ProductView,
            responses=responses(*STAFF, 404))  # fmt: skip
def get_product(product_id: ProductId, _: AdminDep, orders: OrdersDep) -> ProductView:
    """A product with every variant (item id, options, availability, price) and the values
    each option takes."""
    record = orders.product(product_id)
    if record is None:
        raise NotFound(f"Product {product_id} not found")
    product = Product(id=record.id, name=record.name)
    return describe_product(product=product, variants=record.variants, limit=500)
