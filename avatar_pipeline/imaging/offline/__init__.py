"""The offline procedural character renderer behind ``OfflineProvider``.

Modules: ``prompt_parser`` (words -> traits), ``character`` (identity + render state),
``renderer`` (Pillow drawing: ``canvas``, ``face``, ``hair``, ``body``, ``outfit``),
``png_identity`` (identity chunk in the PNG), ``estimate`` (identity from pixels), ``engine``
(generate/edit semantics, edit_strength mapping).
"""

from avatar_pipeline.imaging.offline.character import CharacterIdentity, RenderState
from avatar_pipeline.imaging.offline.png_identity import IDENTITY_KEY, read_embedded, strip_identity
from avatar_pipeline.imaging.offline.renderer import dominant_colour, region_boxes, render

__all__ = [
    "IDENTITY_KEY",
    "CharacterIdentity",
    "RenderState",
    "dominant_colour",
    "read_embedded",
    "region_boxes",
    "render",
    "strip_identity",
]
