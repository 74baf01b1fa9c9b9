"""PNG encoding with the character's identity embedded, and reading it back.

Every image the offline renderer makes carries a ``tEXt`` chunk (key
:data:`IDENTITY_KEY`) holding the identity and the render state as JSON, so ``edit()`` can
re-render the *same* character from a reference. Images without the chunk (manual uploads,
imports, or a PNG that was re-saved) fall back to ``estimate.estimate_identity``.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

from PIL import Image, PngImagePlugin

from avatar_pipeline.imaging.offline.character import CharacterIdentity, RenderState

IDENTITY_KEY = "avatar-offline-identity"
PNG_COMPRESS_LEVEL = 3  # ~2x faster than the default 6 for ~10% larger files


def encode_png(
    img: Image.Image, identity: CharacterIdentity, state: RenderState, renderer: str
) -> bytes:
    """PNG bytes of ``img`` with the identity chunk (deterministic for the same inputs)."""
    payload = {"identity": identity.to_dict(), "state": asdict(state), "renderer": renderer}
    info = PngImagePlugin.PngInfo()
    info.add_text(IDENTITY_KEY, json.dumps(payload, sort_keys=True, separators=(",", ":")))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def read_embedded(img: Image.Image) -> tuple[CharacterIdentity, RenderState] | None:
    """The identity and state embedded in an opened PNG, or ``None`` if absent or unreadable."""
    raw: Any = getattr(img, "text", {}).get(IDENTITY_KEY) if img.format == "PNG" else None
    if not raw:
        return None
    try:
        payload = json.loads(raw)
        identity = CharacterIdentity.from_dict(payload["identity"])
        state = RenderState(**payload["state"])
    except (ValueError, KeyError, TypeError):
        return None  # a damaged or foreign chunk: treat the image as unknown
    return identity, state


def strip_identity(png: bytes) -> bytes:
    """The same pixels re-encoded without any text chunk (what an upload would look like)."""
    with Image.open(io.BytesIO(png)) as img:
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="PNG")
    return buf.getvalue()
