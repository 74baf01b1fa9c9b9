"""Inputs for the not-a-copy sweep: offline-renderer anchors, their copies, and honest edits.

The copies are made here with Pillow (brightness, shift, crop, blur, JPEG), never by the code
under test; the honest edits come from the offline provider's own edit routine, exactly as a
kit run asks for them (expression edits of the portrait at strength 0.5, poses at 0.7).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from avatar_pipeline.domain.prompts import (
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    portrait_prompt,
    pose_prompt,
)
from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, DEFAULT_POSES
from avatar_pipeline.imaging.offline.engine import edit_png, generate_png

HAIR = ("black", "blonde", "red", "silver", "blue", "brown", "pink", "green")
EYES = ("green", "brown", "blue", "violet", "amber")
OUTFITS = (
    "white shirt",
    "red hoodie",
    "navy school uniform",
    "green jacket",
    "black dress",
    "yellow raincoat",
)
STYLES = ("anime style, clean lineart", "watercolour illustration", "flat vector art")
RENDERER = "offline-sweep"


def kit_prompts(i: int) -> KitPrompts:
    return KitPrompts(
        appearance_prompt=(
            f"{HAIR[i % len(HAIR)]} hair, {EYES[(i // 2) % len(EYES)]} eyes, "
            f"{OUTFITS[(i // 3) % len(OUTFITS)]}"
        ),
        style_prompt=STYLES[i % len(STYLES)],
    )


def anchor(i: int, size: int) -> bytes:
    png, _ = generate_png(portrait_prompt(kit_prompts(i)), None, 1000 + i, size, size, RENDERER)
    return png


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _shift(img: Image.Image, fx: float, fy: float) -> Image.Image:
    a = np.asarray(img)
    h, w, _ = a.shape
    dx, dy = round(fx * w), round(fy * h)
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    y0, x0 = abs(dy) - dy, abs(dx) - dx
    return Image.fromarray(padded[y0 : y0 + h, x0 : x0 + w])


def _crop(img: Image.Image, f: float, resize_back: bool) -> Image.Image:
    w, h = img.size
    box = (round(f * w), round(f * h), w - round(f * w), h - round(f * h))
    out = img.crop(box)
    return out.resize((w, h), Image.Resampling.LANCZOS) if resize_back else out


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


COPY_VARIANTS: dict[str, Callable[[Image.Image], bytes]] = {
    "exact": _png,
    "brightness +5%": lambda im: _png(ImageEnhance.Brightness(im).enhance(1.05)),
    "brightness -5%": lambda im: _png(ImageEnhance.Brightness(im).enhance(0.95)),
    "contrast +5%": lambda im: _png(ImageEnhance.Contrast(im).enhance(1.05)),
    "shift 2%": lambda im: _png(_shift(im, 0.02, 0.02)),
    "shift -2% x": lambda im: _png(_shift(im, -0.02, 0.0)),
    "crop 2%": lambda im: _png(_crop(im, 0.02, resize_back=False)),
    "crop 2% + rescale": lambda im: _png(_crop(im, 0.02, resize_back=True)),
    "rescale 50%": lambda im: _png(im.resize((im.width // 2, im.height // 2))),
    "blur r2": lambda im: _png(im.filter(ImageFilter.GaussianBlur(2))),
    "blur r1": lambda im: _png(im.filter(ImageFilter.GaussianBlur(1))),
    "jpeg q80": lambda im: _jpeg(im, 80),
    "jpeg q80 + brightness +5%": lambda im: _jpeg(ImageEnhance.Brightness(im).enhance(1.05), 80),
}


def copies_of(image: bytes) -> Iterator[tuple[str, bytes]]:
    img = _open(image)
    for name, make in COPY_VARIANTS.items():
        yield name, make(img)


@dataclass(frozen=True)
class HonestEdit:
    kind: str  # "expression:happy", "pose:waving", "fullbody"
    image: bytes
    references: tuple[bytes, ...]


def honest_edits(i: int, size: int, portrait: bytes) -> list[HonestEdit]:
    """The offline provider's real edits of anchor ``i``, as a kit run requests them."""
    prompts = kit_prompts(i)
    seed = 5000 + i
    full, _ = edit_png(fullbody_prompt(prompts), (portrait,), None, 0.6, seed, size, size, RENDERER)
    edits = [HonestEdit("fullbody", full, (portrait,))]
    for n, expr in enumerate(DEFAULT_EXPRESSIONS):
        png, _ = edit_png(
            expression_prompt(prompts, expr), (portrait,), None, 0.5, seed + n, size, size, RENDERER
        )
        edits.append(HonestEdit(f"expression:{expr.name}", png, (portrait,)))
    for n, pose in enumerate(DEFAULT_POSES):
        png, _ = edit_png(
            pose_prompt(prompts, pose),
            (portrait, full),
            None,
            0.7,
            seed + 50 + n,
            size,
            size,
            RENDERER,
        )
        edits.append(HonestEdit(f"pose:{pose.name}", png, (portrait, full)))
    return edits


# ---------------------------------------------------------------- the sweep

EVAL_SET = Path(__file__).resolve().parents[2] / "bench" / "eval_set"


@dataclass
class SweepResult:
    """Copies caught per variant, and honest edits falsely called copies."""

    anchors: int = 0
    copies: dict[str, list[float]] = field(default_factory=dict)  # variant -> changed fractions
    # variant -> the screen's coarse estimates of the same comparisons (find_copy measures a
    # target at working size only when its estimate is below copies.screen_margin())
    estimates: dict[str, list[float]] = field(default_factory=dict)
    caught: dict[str, int] = field(default_factory=dict)
    honest: list[tuple[str, str, float]] = field(default_factory=list)  # (anchor, kind, change)
    # per honest edit, the smallest coarse estimate among its targets
    honest_estimates: list[float] = field(default_factory=list)
    false_copies: list[tuple[str, str, float]] = field(default_factory=list)
    sibling_duplicates: int = 0
    sibling_duplicates_caught: int = 0

    @property
    def copies_total(self) -> int:
        return sum(len(v) for v in self.copies.values())

    @property
    def copies_caught(self) -> int:
        return sum(self.caught.values())

    @property
    def false_copy_rate(self) -> float:
        return len(self.false_copies) / len(self.honest) if self.honest else 0.0


def eval_set_characters(limit: int | None = None) -> list[Path]:
    """The evaluation set's characters (both renderers), interleaved o/b."""
    if not EVAL_SET.is_dir():
        return []
    dirs = sorted(p for p in EVAL_SET.iterdir() if (p / "anchor.png").is_file())
    offline = [p for p in dirs if p.name.startswith("o")]
    other = [p for p in dirs if not p.name.startswith("o")]
    mixed = [p for pair in zip(offline, other, strict=False) for p in pair]
    mixed += offline[len(other) :] + other[len(offline) :]
    return mixed[:limit] if limit is not None else mixed


def sweep(
    offline_anchors: int,
    eval_characters: int | None,
    *,
    size: int = 384,
    honest_from: int | None = None,
    max_changed_fraction: float | None = None,
) -> SweepResult:
    """Copies of each anchor (and a duplicated expression among a kit's expressions) must be
    caught; honest edits (offline provider edits of the first ``honest_from`` offline anchors,
    the eval set's other expressions and poses) must not be called copies."""
    from avatar_pipeline.consistency.copies import COPY_MAX_CHANGED_FRACTION, find_copy

    limit = COPY_MAX_CHANGED_FRACTION if max_changed_fraction is None else max_changed_fraction
    result = SweepResult()
    honest_from = offline_anchors if honest_from is None else honest_from

    def copies_of_anchor(name: str, image: bytes) -> None:
        result.anchors += 1
        for variant, copy in copies_of(image):
            verdict = find_copy(copy, [("primary anchor", image)], limit)
            assert verdict.closest is not None
            result.copies.setdefault(variant, []).append(verdict.closest.changed_fraction)
            result.estimates.setdefault(variant, []).append(verdict.closest.coarse_fraction)
            result.caught[variant] = result.caught.get(variant, 0) + int(verdict.is_copy)

    def honest(name: str, kind: str, image: bytes, targets: list[tuple[str, bytes]]) -> None:
        verdict = find_copy(image, targets, limit)
        assert verdict.closest is not None
        row = (name, kind, verdict.closest.changed_fraction)
        result.honest.append(row)
        result.honest_estimates.append(min(c.coarse_fraction for c in verdict.comparisons))
        if verdict.is_copy:
            result.false_copies.append(row)

    for i in range(offline_anchors):
        portrait = anchor(i, size)
        copies_of_anchor(f"offline {i}", portrait)
        if i >= honest_from:
            continue
        edits = honest_edits(i, size, portrait)
        expressions = [e for e in edits if e.kind.startswith("expression:")]
        for edit in edits:
            targets = [("primary anchor", portrait)]
            targets += [(f"reference {k + 1}", r) for k, r in enumerate(edit.references)]
            if edit.kind.startswith("expression:"):  # siblings, as the generator passes them
                targets += [(e.kind, e.image) for e in expressions if e is not edit]
            honest(f"offline {i}", edit.kind, edit.image, targets)
        # a provider that returns one picture for two expressions: a duplicate, re-encoded
        dup = dict(copies_of(expressions[1].image))["jpeg q80"]
        siblings = [(e.kind, e.image) for e in expressions if e is not expressions[0]]
        verdict = find_copy(dup, [("primary anchor", portrait), *siblings], limit)
        result.sibling_duplicates += 1
        result.sibling_duplicates_caught += int(verdict.is_copy)

    for folder in eval_set_characters(eval_characters):
        portrait = (folder / "anchor.png").read_bytes()
        copies_of_anchor(folder.name, portrait)
        others = {
            n: (folder / f"{n}.png").read_bytes() for n in ("expr1", "expr2", "pose1", "pose2")
        }
        for kind, image in others.items():
            siblings = [(k, v) for k, v in others.items() if k != kind and k[:4] == kind[:4]]
            honest(folder.name, kind, image, [("primary anchor", portrait), *siblings])
    return result


def format_sweep(result: SweepResult) -> str:
    from avatar_pipeline.consistency.copies import screen_margin

    margin = screen_margin()
    lines = [
        f"anchors: {result.anchors}",
        "| copy variant | caught | max changed share | max coarse estimate |",
        "|---|---|---|---|",
    ]
    for variant, values in result.copies.items():
        estimate = max(result.estimates.get(variant, [float("nan")]))
        lines.append(
            f"| {variant} | {result.caught[variant]}/{len(values)} | {100 * max(values):.2f} % "
            f"| {100 * estimate:.2f} % |"
        )
    if result.estimates:
        top = max(max(v) for v in result.estimates.values())
        lines.append(
            f"screen margin {100 * margin:.1f} %: the largest coarse estimate of a copy is "
            f"{100 * top:.2f} % ({margin / max(top, 1e-9):.0f}x below it)"
        )
    lines.append(
        f"| duplicate among a kit's expressions (JPEG q80) | "
        f"{result.sibling_duplicates_caught}/{result.sibling_duplicates} | |"
    )
    changes = sorted(c for _, _, c in result.honest)
    if changes:
        lines.append(
            f"honest edits: {len(changes)}, falsely called copies: {len(result.false_copies)} "
            f"({100 * result.false_copy_rate:.2f} %); smallest changes "
            + ", ".join(f"{100 * c:.2f} %" for c in changes[:5])
            + f"; median {100 * changes[len(changes) // 2]:.1f} %"
        )
        below = sum(e < margin for e in result.honest_estimates)
        lines.append(
            f"honest edits with a target whose coarse estimate is below the margin (measured "
            f"precisely at working size): {below} of {len(result.honest_estimates)}; smallest "
            f"estimates "
            + ", ".join(f"{100 * e:.2f} %" for e in sorted(result.honest_estimates)[:5])
        )
    for name, kind, change in result.false_copies:
        lines.append(f"  false copy: {name} {kind} ({100 * change:.2f} % changed)")
    return "\n".join(lines)
