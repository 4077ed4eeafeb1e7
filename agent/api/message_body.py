"""A customer's message as the API reads it: JSON, or multipart with photos; how large its
body may be; and how the OpenAPI schema describes both."""

from __future__ import annotations

import json
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
from agent.config import Settings
from agent.errors import TooLarge
from agent.features.attachments import Upload, decode_base64, image_blocks


class MessageTooLarge(TooLarge):
    """A message body over SUPPORTBOT_MAX_REQUEST_BYTES, its photos not counted: a 413 like
    any other request body over the limit."""

    code = "request_too_large"


def body_limit(settings: Settings) -> int:
    """The most bytes a message body may have: the request limit, plus room for the most
    photos it may carry (as base64, 4/3 of their size). Beyond the photos, read_message holds
    it to the request limit."""
    return settings.max_request_bytes + settings.max_images * settings.max_image_bytes * 4 // 3


def _photo_chars(raw: bytes) -> int:
    """The characters of base64 photo data in a JSON message body that does not validate
    (0 when it does not parse at all)."""
    try:
        images = json.loads(raw).get("images")
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, too deep
        return 0
    if not isinstance(images, list):
        return 0
    data = (image.get("data") for image in images if isinstance(image, dict))
    return sum(len(d) for d in data if isinstance(d, str))


def _check_size(size: int, settings: Settings) -> None:
    """`size`: the body's bytes that are not photos."""
    if size > settings.max_request_bytes:
        raise MessageTooLarge(
            f"The request body is larger than {settings.max_request_bytes} bytes "
            "(not counting its photos)."
        )


async def read_message(request: Request, state: StateDep) -> tuple[str, list[dict[str, Any]]]:
    """(text, image blocks) from a JSON body or a multipart form (`text`, `images` files).
    Everything but the photos is held to SUPPORTBOT_MAX_REQUEST_BYTES (413 beyond), before
    the message is judged: a 100 KB text is too large a request, not merely too long."""
    settings = state.settings
    uploads: list[Upload] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # No part may be larger than the whole body (BodyLimit's): the size is judged below,
        # the same way for every part, rather than by the parser's own 1 MB cap.
        form = await request.form(max_files=settings.max_images + 1,
                                  max_part_size=body_limit(settings))  # fmt: skip
        size = 0
        for key, item in form.multi_items():
            if isinstance(item, StarletteUpload):
                if key != "images":
                    size += item.size or 0
            else:
                size += len(item.encode())
        _check_size(size, settings)
        text = str(form.get("text") or "")
        for item in form.getlist("images"):
            if isinstance(item, StarletteUpload):
                uploads.append(
                    Upload(item.filename or "image", item.content_type, await item.read())
                )
    else:
        raw = await request.body()
        try:
            body = MessageCreate.model_validate_json(raw)
        except ValidationError as exc:
            _check_size(len(raw) - _photo_chars(raw), settings)  # too large comes first
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from exc
        _check_size(len(raw) - sum(len(i.data) for i in body.images), settings)
        text = body.text
        uploads = [Upload(i.name, i.media_type, decode_base64(i.name, i.data)) for i in body.images]
    if not uploads:  # most messages: no worker thread to wake for nothing
        return text, []
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
