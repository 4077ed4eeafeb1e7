"""Photos customers attach: checked from their bytes (decoded, not only sniffed), stored as
Claude image blocks."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from agent.config import Settings
from agent.errors import InvalidInput, TooLarge, UnsupportedMedia

ACCEPTED = "JPEG, PNG, WebP or GIF"
PILLOW_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
MAX_SIDE = 8000  # pixels; the Messages API refuses larger images


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


def check_decodes(name: str, data: bytes, media_type: str) -> None:
    """Decode the photo, so that bytes which only start like an image are refused before they
    are stored or sent. Cheap: only the sniffed format's decoder is tried, the size is checked
    from the header before any pixel is decoded (a decompression bomb never is), and a JPEG is
    decoded at 1/8 scale (every byte of it is still read)."""
    try:
        with Image.open(io.BytesIO(data), formats=[PILLOW_FORMAT[media_type]]) as image:
            width, height = image.size
            if max(width, height) > MAX_SIDE:
                raise InvalidInput(
                    f"{name} is {width:,} × {height:,} pixels; a photo can be at most "
                    f"{MAX_SIDE:,} pixels a side."
                )
            if image.format == "JPEG":
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidInput(f"{name} has too many pixels to be a photo.") from exc
    except UnidentifiedImageError as exc:
        raise InvalidInput(
            f"{name} could not be read as an image (not a valid {PILLOW_FORMAT[media_type]})."
        ) from exc
    except Exception as exc:  # whatever a decoder raises on bad bytes, the photo is unreadable
        raise InvalidInput(f"{name} could not be read as an image ({exc}).") from exc


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
        check_decodes(upload.name, upload.data, actual)
        blocks.append({
            "type": "image",
            "source": {"type": "base64", "media_type": actual,
                       "data": base64.b64encode(upload.data).decode()},
        })  # fmt: skip
    return blocks
