"""The offline character's identity: every trait the renderer needs, resolved to values.

``identity_from_prompt(traits, seed)`` honours what the prompt states and draws everything it
leaves open (face shape, skin tone, hair details, eye shape, outfit colour, accessory,
background, proportions) from ``random.Random(seed)``. All draws happen in a fixed order
whatever the prompt states, so stating one trait never reshuffles the others for a seed.
The identity round-trips through JSON so it can ride inside the PNG (see ``png_identity``).
"""

from __future__ import annotations

import colorsys
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

from avatar_pipeline.imaging.offline.prompt_parser import ColourWord, Exclusions, PromptTraits

RGB = tuple[int, int, int]
T = TypeVar("T")

COLOURS: dict[str, RGB] = {
    "black": (40, 36, 48),
    "brown": (116, 74, 48),
    "hazel": (150, 110, 62),
    "blonde": (244, 210, 122),
    "gold": (232, 182, 64),
    "amber": (214, 138, 48),
    "red": (200, 46, 46),
    "auburn": (152, 62, 42),
    "orange": (236, 128, 52),
    "silver": (200, 206, 218),
    "grey": (128, 130, 142),
    "white": (244, 244, 248),
    "pink": (246, 148, 190),
    "blue": (62, 108, 214),
    "navy": (40, 52, 104),
    "teal": (34, 156, 160),
    "green": (64, 150, 86),
    "olive": (120, 128, 60),
    "mint": (150, 222, 190),
    "purple": (128, 76, 182),
    "lavender": (190, 162, 228),
    "yellow": (246, 220, 86),
    "beige": (216, 196, 160),
    "cream": (250, 240, 214),
    "maroon": (112, 32, 48),
}
SKIN_TONES: tuple[RGB, ...] = (
    (255, 228, 210),
    (250, 214, 188),
    (238, 194, 160),
    (214, 164, 124),
    (172, 122, 88),
    (124, 86, 62),
)
HAIR_POOL = (
    "black",
    "brown",
    "blonde",
    "red",
    "silver",
    "pink",
    "blue",
    "purple",
    "auburn",
    "white",
    "teal",
    "green",
)
EYE_POOL = ("brown", "blue", "green", "purple", "red", "gold", "teal", "grey", "pink", "amber")
OUTFIT_POOL = (
    "cardigan",
    "sweater",
    "dress",
    "sundress",
    "hoodie",
    "jacket",
    "suit",
    "kimono",
    "tshirt",
    "uniform",
    "blouse",
)
OUTFIT_COLOUR_POOL = (
    "red",
    "blue",
    "green",
    "navy",
    "pink",
    "purple",
    "yellow",
    "teal",
    "cream",
    "maroon",
    "lavender",
    "mint",
    "orange",
    "grey",
    "black",
    "white",
)
ACCENT_POOL = ("white", "cream", "black", "yellow", "red", "navy", "pink", "mint")
BOTTOM_POOL = ("navy", "grey", "beige", "black", "brown", "maroon", "blue")
ACCESSORY_POOL = ("none", "ribbon", "hairclip", "flower", "glasses", "headband")
HAIR_LENGTHS = ("short", "shoulder", "long")
FACE_SHAPES = ("round", "oval", "pointed")
EYE_SHAPES = ("round", "almond", "droopy", "sharp")
BANGS = ("straight", "swept", "parted", "spiky")
BACKGROUND_PATTERNS = ("plain", "dots", "stripes", "vignette")
MEDIUMS = ("plain", "anime", "watercolor", "pixel", "realistic")

IDENTITY_SCHEMA = 1


def colour_rgb(colour: ColourWord) -> RGB:
    """RGB of a parsed colour word, lightened or darkened by its modifier."""
    base = COLOURS[colour.name]
    if colour.modifier == "light":
        return mix(base, (255, 255, 255), 0.4)
    if colour.modifier == "dark":
        return scale(base, 0.62)
    return base


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend: ``t=0`` gives ``a``, ``t=1`` gives ``b``."""
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def scale(c: RGB, k: float) -> RGB:
    return (min(255, round(c[0] * k)), min(255, round(c[1] * k)), min(255, round(c[2] * k)))


def nearest_colour_name(rgb: RGB, names: tuple[str, ...] | None = None) -> str:
    """The named colour closest to ``rgb`` (used for estimated identities)."""
    pool = names or tuple(COLOURS)
    return min(pool, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], rgb, strict=True)))


@dataclass(frozen=True)
class StyleTraits:
    """How the character is drawn: medium, shading and palette."""

    medium: str = "plain"  # plain | anime | watercolor | pixel | realistic
    shading: str = "cel"  # cel (hard shadows) | soft | flat
    palette: str = "neutral"  # neutral | pastel | warm | cool


@dataclass(frozen=True)
class CharacterIdentity:
    """Every visual trait of one character; colours as RGB plus the name they came from."""

    hair_colour: str
    hair_rgb: RGB
    hair_length: str
    bangs: str
    ahoge: bool
    side_locks: bool
    hair_volume: float
    eye_colour: str
    eye_rgb: RGB
    eye_shape: str
    eye_size: float
    skin_rgb: RGB
    face_shape: str
    outfit_kind: str
    outfit_colour: str
    outfit_rgb: RGB
    accent_rgb: RGB
    bottom_kind: str  # skirt | trousers | shorts | none (dresses, kimono)
    bottom_rgb: RGB
    shoe_rgb: RGB
    accessory: str
    accessory_rgb: RGB
    background_rgb: RGB
    background_pattern: str
    head_scale: float
    body_width: float
    style: StyleTraits

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = IDENTITY_SCHEMA
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharacterIdentity:
        """Rebuild from :meth:`to_dict`; raises ``ValueError`` on a malformed payload."""
        try:
            values: dict[str, Any] = {}
            for f in fields(cls):
                raw = data[f.name]
                if f.name == "style":
                    values[f.name] = StyleTraits(**raw)
                elif f.name.endswith("_rgb"):
                    r, g, b = (int(v) for v in raw)
                    values[f.name] = (r, g, b)
                else:
                    values[f.name] = raw
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid offline character identity: {exc}") from exc


# The model sheet's eight expressions, plus "gentle" (the portrait anchor's soft closed-mouth
# smile, which the neutral expression must not repeat).
EXPRESSIONS = (
    "neutral",
    "happy",
    "shy",
    "flustered",
    "sad",
    "angry",
    "surprised",
    "thinking",
    "gentle",
)
# "standing" is the reference stance (arms relaxed at the sides: the full-body anchor);
# "hands_on_hips" is the model sheet's standing pose, which must not repeat the anchor.
POSES = ("standing", "sitting", "waving", "walking", "hands_on_hips")
FRAMINGS = ("portrait", "fullbody")


@dataclass(frozen=True)
class RenderState:
    """What one image shows of the character: expression, pose and framing.

    ``variation`` seeds small non-identity differences between renders of the same state (head
    position, arm swing), as two takes of one drawing would have; 0 draws the canonical take.
    """

    expression: str = "neutral"
    pose: str = "standing"
    framing: str = "portrait"  # portrait (shoulders up) | fullbody
    variation: int = 0

    def __post_init__(self) -> None:
        for value, allowed in (
            (self.expression, EXPRESSIONS),
            (self.pose, POSES),
            (self.framing, FRAMINGS),
        ):
            if value not in allowed:
                raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")


def _choose(rng: random.Random, pool: Sequence[T]) -> T:
    """One item for exactly one ``rng.random()`` draw (so exclusions never shift later draws)."""
    return pool[int(rng.random() * len(pool))]


def _pick(rng: random.Random, pool: tuple[str, ...], excluded: frozenset[str]) -> str:
    return _choose(rng, tuple(p for p in pool if p not in excluded) or pool)


def style_from_traits(traits: PromptTraits, base: StyleTraits | None = None) -> StyleTraits:
    """The prompt's style words over ``base`` (default: plain, cel shading, neutral palette)."""
    style = base or StyleTraits()
    if traits.medium is not None:
        shading = {"watercolor": "soft", "realistic": "soft", "pixel": "flat"}.get(
            traits.medium, "cel"
        )
        style = replace(style, medium=traits.medium, shading=shading)
    if traits.cel_shading:
        style = replace(style, shading="cel")
    if traits.palette is not None:
        style = replace(style, palette=traits.palette)
    return style


def identity_from_prompt(
    traits: PromptTraits, seed: int, exclusions: Exclusions | None = None
) -> CharacterIdentity:
    """Stated traits from ``traits``; everything else drawn from ``seed``."""
    ex = exclusions or Exclusions()
    rng = random.Random(seed)
    # Fixed draw order: do not reorder or insert draws in the middle (it would change every
    # character an existing seed produces); append new draws at the end.
    seeded = {
        "hair_colour": _pick(rng, HAIR_POOL, ex.hair_colours),
        "hair_length": _pick(rng, HAIR_LENGTHS, ex.hair_lengths),
        "bangs": _choose(rng, BANGS),
        "ahoge": rng.random() < 0.4,
        "side_locks": rng.random() < 0.6,
        "hair_volume": round(rng.uniform(1.0, 1.12), 3),
        "eye_colour": _pick(rng, EYE_POOL, ex.eye_colours),
        "eye_shape": _choose(rng, EYE_SHAPES),
        "eye_size": round(rng.uniform(0.88, 1.14), 3),
        "skin_rgb": _choose(rng, SKIN_TONES),
        "face_shape": _choose(rng, FACE_SHAPES),
        "outfit_kind": _pick(rng, OUTFIT_POOL, ex.outfit_kinds),
        "outfit_colour": _pick(rng, OUTFIT_COLOUR_POOL, ex.outfit_colours),
        "accent": _choose(rng, ACCENT_POOL),
        "bottom": _choose(rng, BOTTOM_POOL),
        "shoe": _choose(rng, ("black", "brown", "maroon", "white", "navy")),
        "accessory": _pick(rng, ACCESSORY_POOL, ex.accessories),
        "accessory_colour": _choose(rng, ("red", "pink", "yellow", "blue", "white", "purple")),
        "background_hue": rng.random(),
        "background_pattern": _choose(rng, BACKGROUND_PATTERNS),
        "head_scale": round(rng.uniform(0.92, 1.1), 3),
        "body_width": round(rng.uniform(0.9, 1.12), 3),
        "bottom_kind": _choose(rng, ("skirt", "trousers", "shorts")),
    }
    hair = traits.hair_colour or ColourWord(seeded["hair_colour"])
    eyes = traits.eye_colour or ColourWord(seeded["eye_colour"])
    outfit = traits.outfit_colour or ColourWord(seeded["outfit_colour"])
    accent = traits.accent_colour or ColourWord(seeded["accent"])
    bottom = traits.bottom_colour or ColourWord(seeded["bottom"])
    accessory = traits.accessories[0] if traits.accessories else seeded["accessory"]
    outfit_kind = traits.outfit_kind or seeded["outfit_kind"]
    bottom_kind = bottom_kind_for(outfit_kind, traits.bottom_kind or seeded["bottom_kind"])
    if traits.bottom_kind == "jeans" and traits.bottom_colour is None:
        bottom = ColourWord("blue", "dark")
    return CharacterIdentity(
        hair_colour=hair.name,
        hair_rgb=colour_rgb(hair),
        hair_length=traits.hair_length or seeded["hair_length"],
        bangs=seeded["bangs"],
        ahoge=seeded["ahoge"],
        side_locks=seeded["side_locks"],
        hair_volume=seeded["hair_volume"],
        eye_colour=eyes.name,
        eye_rgb=colour_rgb(eyes),
        eye_shape=seeded["eye_shape"],
        eye_size=seeded["eye_size"],
        skin_rgb=seeded["skin_rgb"],
        face_shape=seeded["face_shape"],
        outfit_kind=outfit_kind,
        outfit_colour=outfit.name,
        outfit_rgb=colour_rgb(outfit),
        accent_rgb=colour_rgb(accent),
        bottom_kind=bottom_kind,
        bottom_rgb=colour_rgb(bottom),
        shoe_rgb=COLOURS[seeded["shoe"]],
        accessory=accessory,
        accessory_rgb=COLOURS[seeded["accessory_colour"]],
        background_rgb=pastel_from_hue(seeded["background_hue"]),
        background_pattern=seeded["background_pattern"],
        head_scale=seeded["head_scale"],
        body_width=seeded["body_width"],
        style=style_from_traits(traits),
    )


def bottom_kind_for(outfit_kind: str, wanted: str) -> str:
    """What is worn below ``outfit_kind``: dresses and kimono have no separate bottom."""
    if outfit_kind in ("dress", "sundress", "kimono"):
        return "none"
    if outfit_kind == "suit":
        return "trousers"
    if wanted == "none" or (outfit_kind == "uniform" and wanted == "shorts"):
        return "skirt"
    return "trousers" if wanted == "jeans" else wanted


def pastel_from_hue(hue: float) -> RGB:
    """A soft background tint for a hue in [0, 1)."""
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, 0.88, 0.55)
    return (round(r * 255), round(g * 255), round(b * 255))


def apply_prompt_overrides(
    identity: CharacterIdentity, traits: PromptTraits, exclusions: Exclusions | None = None
) -> tuple[CharacterIdentity, list[str]]:
    """Let appearance words that contradict ``identity`` replace it (strong edits only).

    Returns the new identity and the names of the traits that changed.
    """
    changes: dict[str, Any] = {}
    if traits.hair_colour and traits.hair_colour.name != identity.hair_colour:
        changes.update(hair_colour=traits.hair_colour.name, hair_rgb=colour_rgb(traits.hair_colour))
    if traits.hair_length and traits.hair_length != identity.hair_length:
        changes["hair_length"] = traits.hair_length
    if traits.eye_colour and traits.eye_colour.name != identity.eye_colour:
        changes.update(eye_colour=traits.eye_colour.name, eye_rgb=colour_rgb(traits.eye_colour))
    if traits.outfit_kind and traits.outfit_kind != identity.outfit_kind:
        changes["outfit_kind"] = traits.outfit_kind
        changes["bottom_kind"] = bottom_kind_for(traits.outfit_kind, identity.bottom_kind)
    if traits.bottom_kind:
        bottom_kind = bottom_kind_for(
            changes.get("outfit_kind", identity.outfit_kind), traits.bottom_kind
        )
        if bottom_kind != identity.bottom_kind:
            changes["bottom_kind"] = bottom_kind
    if traits.outfit_colour and traits.outfit_colour.name != identity.outfit_colour:
        changes.update(
            outfit_colour=traits.outfit_colour.name, outfit_rgb=colour_rgb(traits.outfit_colour)
        )
    if traits.accent_colour and colour_rgb(traits.accent_colour) != identity.accent_rgb:
        changes["accent_rgb"] = colour_rgb(traits.accent_colour)
    if traits.bottom_colour and colour_rgb(traits.bottom_colour) != identity.bottom_rgb:
        changes["bottom_rgb"] = colour_rgb(traits.bottom_colour)
    if traits.accessories and traits.accessories[0] != identity.accessory:
        changes["accessory"] = traits.accessories[0]
    elif exclusions and identity.accessory in exclusions.accessories:
        changes["accessory"] = "none"
    style = style_from_traits(traits, identity.style)
    if style != identity.style:
        changes["style"] = style
    return replace(identity, **changes), sorted(changes)


MEASURED_FIELDS = ("hair_colour", "hair_rgb", "hair_length", "skin_rgb", "eye_colour", "eye_rgb",
                   "outfit_colour", "outfit_rgb", "background_rgb")  # fmt: skip


def fill_unmeasured(
    identity: CharacterIdentity, traits: PromptTraits, exclusions: Exclusions | None = None
) -> tuple[CharacterIdentity, list[str]]:
    """Prompt words for the traits an estimate could not measure (outfit kind, style, ...)."""
    updated, changed = apply_prompt_overrides(identity, traits, exclusions)
    keep = {name: getattr(identity, name) for name in MEASURED_FIELDS}
    return replace(updated, **keep), [c for c in changed if c not in MEASURED_FIELDS]


def with_outfit_from(identity: CharacterIdentity, donor: CharacterIdentity) -> CharacterIdentity:
    """``identity`` wearing ``donor``'s outfit (extra references contribute the outfit)."""
    return replace(
        identity,
        outfit_kind=donor.outfit_kind,
        outfit_colour=donor.outfit_colour,
        outfit_rgb=donor.outfit_rgb,
        accent_rgb=donor.accent_rgb,
        bottom_kind=donor.bottom_kind,
        bottom_rgb=donor.bottom_rgb,
        shoe_rgb=donor.shoe_rgb,
    )
