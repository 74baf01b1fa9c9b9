"""The offline provider's synchronous core: prompt (+ references) -> PNG bytes.

``generate_png``: traits the prompt states are honoured; everything it leaves open comes from
the seed. ``edit_png``: the identity comes from the first reference (embedded chunk, else
estimated from pixels), extra references contribute the outfit, and ``edit_strength`` decides
how much of the prompt may change:

=================  ============================================================================
edit_strength      effect
=================  ============================================================================
0 .. <0.3          touch-up: only the expression changes (pose and framing stay), and the new
                   render is blended over the reference with alpha = strength / 0.3
0.3 .. <0.7        edit: expression, pose and framing follow the prompt; identity kept exactly
0.7 .. 1.0         strong edit: appearance words that contradict the identity (e.g. "blonde
                   hair") override it, and above 0.7 the background drifts towards a seeded
                   tint in proportion to (strength - 0.7) / 0.3 ("1 = ignore reference")
=================  ============================================================================

An estimated identity (reference without the chunk) only knows what pixels tell: hair colour
and length, skin, eye and outfit colours, background. At any strength the prompt's words fill
in the rest (outfit kind, accessory, art style); the measured traits follow the rules above.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import asdict, replace
from typing import Any

from PIL import Image, UnidentifiedImageError

from avatar_pipeline.imaging.offline.character import (
    CharacterIdentity,
    RenderState,
    apply_prompt_overrides,
    fill_unmeasured,
    identity_from_prompt,
    mix,
    pastel_from_hue,
    with_outfit_from,
)
from avatar_pipeline.imaging.offline.estimate import estimate_identity, seed_from_bytes
from avatar_pipeline.imaging.offline.png_identity import encode_png, read_embedded
from avatar_pipeline.imaging.offline.prompt_parser import PromptTraits, parse_negative, parse_prompt
from avatar_pipeline.imaging.offline.renderer import render

TOUCH_UP_BELOW = 0.3
OVERRIDE_FROM = 0.7


class ReferenceImageError(ValueError):
    """A reference image could not be decoded."""


def identity_summary(identity: CharacterIdentity) -> dict[str, str]:
    """The identity in words (for ``ProviderResult.extra`` and generation metadata)."""
    return {
        "hair": f"{identity.hair_length} {identity.hair_colour}",
        "eyes": identity.eye_colour,
        "outfit": f"{identity.outfit_colour} {identity.outfit_kind}",
        "accessory": identity.accessory,
        "style": f"{identity.style.medium}, {identity.style.shading}, {identity.style.palette}",
    }


def derive_seed(*parts: str | bytes) -> int:
    """A stable 31-bit seed from the request's text/bytes (used when the request has none)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\x00")
    return int(digest.hexdigest()[:8], 16) & 0x7FFFFFFF


def state_from_prompt(traits: PromptTraits, default: RenderState) -> RenderState:
    """The prompt's expression/pose/framing over ``default`` (unstated parts are kept)."""
    framing = traits.framing or ("fullbody" if traits.pose else default.framing)
    return replace(
        default,
        expression=traits.expression or default.expression,
        pose=traits.pose or default.pose,
        framing=framing,
    )


def generate_png(
    prompt: str, negative_prompt: str | None, seed: int, width: int, height: int, renderer: str
) -> tuple[bytes, dict[str, Any]]:
    traits = parse_prompt(prompt)
    identity = identity_from_prompt(traits, seed, parse_negative(negative_prompt))
    state = state_from_prompt(traits, RenderState())
    png = encode_png(render(identity, state, width, height), identity, state, renderer)
    return png, {
        "state": asdict(state),
        "identity": identity_summary(identity),
        "stated_traits": traits.stated_appearance(),
        "seed_used": seed,
    }


def _open_reference(data: bytes, index: int) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ReferenceImageError(
            f"reference_images[{index}] is not a decodable image ({len(data)} bytes): {exc}. "
            "Pass PNG or JPEG bytes."
        ) from exc
    return img


def _identity_of(img: Image.Image, data: bytes) -> tuple[CharacterIdentity, RenderState, str]:
    embedded = read_embedded(img)
    if embedded is not None:
        return embedded[0], embedded[1], "embedded"
    identity, state, _notes = estimate_identity(img, seed_from_bytes(data))
    return identity, state, "estimated"


def _mode(strength: float) -> str:
    if strength < TOUCH_UP_BELOW:
        return "touch-up"
    return "edit" if strength < OVERRIDE_FROM else "strong"


def edit_png(
    prompt: str,
    references: tuple[bytes, ...],
    negative_prompt: str | None,
    strength: float,
    seed: int,
    width: int,
    height: int,
    renderer: str,
) -> tuple[bytes, dict[str, Any]]:
    images = [_open_reference(data, i) for i, data in enumerate(references)]
    identity, ref_state, source = _identity_of(images[0], references[0])
    ref_map: list[dict[str, Any]] = [{"index": 0, "role": "identity", "identity": source}]
    for i, (img, data) in enumerate(zip(images[1:], references[1:], strict=True), start=1):
        donor, _state, donor_source = _identity_of(img, data)
        if i == 1:
            if donor_source == "embedded":
                identity = with_outfit_from(identity, donor)
            else:  # pixels only tell us the outfit colour reliably
                identity = replace(
                    identity, outfit_colour=donor.outfit_colour, outfit_rgb=donor.outfit_rgb
                )
            ref_map.append({"index": i, "role": "outfit", "identity": donor_source})
        else:
            ref_map.append({"index": i, "role": "unused", "identity": donor_source})

    traits = parse_prompt(prompt)
    exclusions = parse_negative(negative_prompt)
    touch_up = strength < TOUCH_UP_BELOW
    if touch_up:  # only the expression may change
        state = replace(ref_state, expression=traits.expression or ref_state.expression)
    else:
        state = state_from_prompt(traits, ref_state)
    # A new take of the drawing, never a pixel copy of the reference (a real model redraws too).
    state = replace(state, variation=derive_seed(str(seed), prompt) or 1)
    overridden: list[str] = []
    filled: list[str] = []
    if source == "estimated" and strength < OVERRIDE_FROM:
        identity, filled = fill_unmeasured(identity, traits, exclusions)
    drift = 0.0
    if strength >= OVERRIDE_FROM:
        identity, overridden = apply_prompt_overrides(identity, traits, exclusions)
        drift = (strength - OVERRIDE_FROM) / (1 - OVERRIDE_FROM)
        if drift > 0:
            tint = pastel_from_hue(random.Random(seed).random())
            identity = replace(identity, background_rgb=mix(identity.background_rgb, tint, drift))

    img = render(identity, state, width, height)
    alpha = 1.0
    if touch_up:
        alpha = strength / TOUCH_UP_BELOW
        reference = images[0].convert("RGB")
        if reference.size != (width, height):
            reference = reference.resize((width, height), Image.Resampling.LANCZOS)
        img = Image.blend(reference, img, alpha)
    png = encode_png(img, identity, state, renderer)
    return png, {
        "state": asdict(state),
        "identity": identity_summary(identity),
        "reference_state": asdict(ref_state),
        "references": ref_map,
        "edit_strength_mapping": {
            "mode": _mode(strength),
            "blend_alpha": round(alpha, 4),
            "pose_and_framing_follow_prompt": not touch_up,
            "appearance_overrides": overridden,
            "filled_from_prompt": filled,
            "background_drift": round(drift, 4),
        },
        "seed_used": seed,
    }
