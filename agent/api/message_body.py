"""A customer's message as the API reads it: JSON, or multipart with photos; and how the
OpenAPI schema describes both."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from agent.api.deps import StateDep
from agent.api.schemas import (
    NOT_EMPTY,
    NOT_EMPTY_RULE,
    MessageCreate,
)
from agent.features.attachments import Upload, decode_base64, image_blocks


async def read_message(request: Request, state: StateDep) -> tuple[str, list[dict[str, Any]]]:
    """(text, image blocks) from a JSON body or a multipart form (`text`, `images` files)."""
    uploads: list[Upload] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=state.settings.max_images + 1)
        text = str(form.get("text") or "")
        for item in form.getlist("images"):
            if isinstance(item, StarletteUpload):
                uploads.append(
                    Upload(item.filename or "image", item.content_type, await item.read())
                )
    else:
        try:
            body = MessageCreate.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from exc
        text = body.text
        uploads = [Upload(i.name, i.media_type, decode_base64(i.name, i.data)) for i in body.images]
    # Decoding the photos is CPU work: off the event loop.
    return text, await anyio.to_thread.run_sync(image_blocks, uploads, state.settings)


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place (a `#/$defs/...` reference
    means nothing inside the OpenAPI document)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {key: walk(value) for key, value in node.items()}
        return [walk(item) for item in node] if isinstance(node, list) else node

    return walk(schema)  # type: ignore[no-any-return]


MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inlined(MessageCreate.model_json_schema())},
            "multipart/form-data": {"schema": {
                "type": "object",
                "description": NOT_EMPTY_RULE,
                "properties": {
                    "text": {"type": "string", "description": "The customer's message"},
                    "images": {"type": "array", "description": "Photos, e.g. of damage",
                               "items": {"type": "string", "format": "binary"}},
                },
                "anyOf": NOT_EMPTY,
            }},
        },
    }
}  # fmt: skip
