"""The product's offline renderer, matted out of its own background (difference matting: the
same figure rendered over two known backgrounds)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from avatar_pipeline.imaging.offline.character import CharacterIdentity, RenderState
from avatar_pipeline.imaging.offline.renderer import _background, render


def figure_rgba(ident: CharacterIdentity, state: RenderState, size: int) -> Image.Image:
    """The character alone (RGBA) as the offline renderer draws it at ``size`` px."""
    one = replace(ident, background_rgb=(0, 0, 0), background_pattern="plain")
    two = replace(ident, background_rgb=(255, 255, 255), background_pattern="plain")
    i1 = np.asarray(render(one, state, size, size), float)
    i2 = np.asarray(render(two, state, size, size), float)
    b1 = np.asarray(_background(one, state, size, size), float)
    b2 = np.asarray(_background(two, state, size, size), float)
    db = b2 - b1
    denom = np.maximum((db * db).sum(-1), 1.0)
    alpha = 1.0 - ((i2 - i1) * db).sum(-1) / denom
    alpha = np.clip(alpha, 0.0, 1.0)
    alpha[alpha < 0.2] = 0.0
    safe = np.maximum(alpha, 1e-3)[..., None]
    colour = (i1 - (1 - alpha[..., None]) * b1) / safe
    rgba = np.dstack([np.clip(colour, 0, 255), alpha * 255]).round().astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")
