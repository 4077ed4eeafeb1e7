"""Photos customers attach: checked from their bytes, stored as Claude image blocks."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from agent.config import Settings
from agent.errors import InvalidInput, TooLarge, UnsupportedMedia

ACCEPTED = "JPEG, PNG, WebP or GIF"


@dataclass(frozen=True)
class Upload:
    name: str
    declared_type: str | None  # what the client said; never trusted on its own
    data: bytes


def sniff(data: bytes) -> str | None:
    """The image type the bytes really are, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_base64(name: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{name}: the image data is not valid base64.") from exc


def image_blocks(uploads: list[Upload], settings: Settings) -> list[dict[str, Any]]:
    """Image content blocks for the customer's message; a clear error for anything else."""
    if len(uploads) > settings.max_images:
        raise InvalidInput(
            f"At most {settings.max_images} images per message ({len(uploads)} sent)."
        )
    blocks = []
    for upload in uploads:
        if len(upload.data) > settings.max_image_bytes:
            raise TooLarge(
                f"{upload.name} is {len(upload.data):,} bytes; the limit is "
                f"{settings.max_image_bytes:,} bytes per image."
            )
        actual = sniff(upload.data)
        if actual is None:
            raise UnsupportedMedia(f"{upload.name} is not a {ACCEPTED} image.")
        declared = (upload.declared_type or "").split(";")[0].strip().lower()
        if declared and declared not in ("application/octet-stream", actual):
            raise InvalidInput(f"{upload.name} is labelled {declared} but its content is {actual}.")
        blocks.append({
            "type": "image",
            "source": {"type": "base64", "media_type": actual,
                       "data": base64.b64encode(upload.data).decode()},
        })  # fmt: skip
    return blocks
