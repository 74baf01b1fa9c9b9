"""Generate the consistency evaluation set: ``bench/eval_set/`` (images + pairs.csv).

Two independent drawing routines: ``offline`` (the product's renderer, matted out of its own
background) and ``b`` (avatar_pipeline_tests/eval_art/renderer_b.py, written separately with a
different construction). Characters come in families of four that share colours on purpose:

    m0: the family's hair colour H and outfit colour O
    m1: hair H, another outfit       -> hard negative "hard_hair" against m0/m3
    m2: another hair, outfit O       -> hard negative "hard_outfit" against m0/m3
    m3: hair H and outfit O          -> hard negative "hard_both" against m0

(everything else - skin, eyes, accents, hair style, accessory, proportions - is drawn at random).
Every character has an anchor (portrait, neutral, its "home" background) and five images of
itself: the anchor's picture on another background only (``same_background``), two other
expressions and two full-body poses, each on a random background (flat, gradient, stripes,
checks, dots, sky and ground, a room), under random lighting (brightness 0.85-1.15, tint
+-5 % per channel) and framing (zoom, shift, crops by the frame edge). Its ``impostor.png`` is
another family's character on the anchor's home background and framing
(``other_same_background``). pairs.csv: anchor,other,same,kind,renderer,split where split is
``calib`` (offline renderer, families 0-2: the only pairs thresholds may be derived from) or
``holdout`` (everything else).

    .venv/bin/python bench/make_eval_set.py [--out bench/eval_set] [--families 6] [--size 256]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from dataclasses import replace
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar_pipeline.imaging.offline.character import (  # noqa: E402
    COLOURS,
    HAIR_POOL,
    OUTFIT_COLOUR_POOL,
    CharacterIdentity,
    RenderState,
    identity_from_prompt,
)
from avatar_pipeline.imaging.offline.prompt_parser import parse_prompt  # noqa: E402
from avatar_pipeline_tests.eval_art import renderer_b  # noqa: E402
from avatar_pipeline_tests.eval_art.backgrounds import KINDS, background  # noqa: E402
from avatar_pipeline_tests.eval_art.compose import light, place  # noqa: E402
from avatar_pipeline_tests.eval_art.offline_figures import figure_rgba  # noqa: E402

EXPRESSIONS = ("happy", "sad", "angry", "surprised", "shy", "thinking", "flustered")
POSES = ("standing", "waving", "sitting", "walking")
STYLES = ("an anime girl", "a plain cartoon boy", "an anime boy", "a plain cartoon girl")
RELATION = {(0, 1): "hard_hair", (0, 2): "hard_outfit", (0, 3): "hard_both",
            (1, 2): "hard_none", (1, 3): "hard_hair", (2, 3): "hard_outfit"}  # fmt: skip
HOME_KINDS = ("flat", "gradient", "stripes", "dots", "checks", "sky_ground", "room")


def _offline_family(f: int) -> list[CharacterIdentity]:
    rng = random.Random(f"offline-family:{f}")
    base = identity_from_prompt(parse_prompt(STYLES[f % len(STYLES)]), 1000 + f * 17)
    members = [base]
    for m in (1, 2, 3):
        other = identity_from_prompt(parse_prompt(rng.choice(STYLES)), 5000 + f * 31 + m)
        if m in (1, 3):
            other = replace(other, hair_colour=base.hair_colour, hair_rgb=base.hair_rgb)
        elif other.hair_colour == base.hair_colour:
            name = rng.choice([h for h in HAIR_POOL if h != base.hair_colour])
            other = replace(other, hair_colour=name, hair_rgb=COLOURS[name])
        if m in (2, 3):
            other = replace(other, outfit_colour=base.outfit_colour, outfit_rgb=base.outfit_rgb)
        elif other.outfit_colour == base.outfit_colour:
            name = rng.choice([o for o in OUTFIT_COLOUR_POOL if o != base.outfit_colour])
            other = replace(other, outfit_colour=name, outfit_rgb=COLOURS[name])
        members.append(other)
    return members


def _b_family(f: int) -> list[renderer_b.CharacterB]:
    rng = random.Random(f"b-family:{f}")
    base = renderer_b.random_character(rng)
    members = [base]
    for m in (1, 2, 3):
        other = renderer_b.random_character(rng)
        if m in (1, 3):
            other = replace(other, hair=base.hair)
        if m in (2, 3):
            other = replace(other, outfit=base.outfit)
        members.append(other)
    return members


def _figure(renderer: str, char: object, expression: str, pose: str, framing: str, size: int,
            variation: int) -> Image.Image:  # fmt: skip
    if renderer == "offline":
        assert isinstance(char, CharacterIdentity)
        state = RenderState(expression=expression if expression != "neutral" else "neutral",
                            pose=pose, framing=framing, variation=variation)  # fmt: skip
        return figure_rgba(char, state, size)
    assert isinstance(char, renderer_b.CharacterB)
    return renderer_b.render_b(
        char, expression=expression, pose=pose, framing=framing, size=size, variation=variation
    )


def _save(img: Image.Image, path: Path) -> None:
    """A 256-colour PNG (keeps the set a few MB; the banding it adds is part of the test)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                        dither=Image.Dither.NONE)  # fmt: skip
    small.save(path, format="PNG", optimize=True)


def build(out: Path, families: int, size: int) -> int:
    chars: list[tuple[str, str, int, int, object]] = []  # (id, renderer, family, member, char)
    for renderer in ("offline", "b"):
        for f in range(families):
            members = _offline_family(f) if renderer == "offline" else _b_family(f)
            for m, char in enumerate(members):
                chars.append((f"{renderer[0]}{f:02d}m{m}", renderer, f, m, char))
    rows: list[dict[str, str]] = []
    for idx, (cid, renderer, f, m, char) in enumerate(chars):
        rng = random.Random(f"eval:{cid}")
        home = (HOME_KINDS[idx % len(HOME_KINDS)], idx)
        folder = out / cid
        anchor_fig = _figure(renderer, char, "neutral", "standing", "portrait", size, 0)
        _save(place(anchor_fig, background(home[0], home[1], size)), folder / "anchor.png")
        other_kind = rng.choice([k for k in KINDS if k != home[0]])
        _save(place(anchor_fig, background(other_kind, idx + 500, size)), folder / "bg.png")
        shots = [("expr1", "portrait"), ("expr2", "portrait"), ("pose1", "fullbody"),
                 ("pose2", "fullbody")]  # fmt: skip
        expressions = rng.sample(EXPRESSIONS, 2) + [rng.choice(("neutral", *EXPRESSIONS))] * 2
        poses = ["standing", "standing", *rng.sample(POSES, 2)]
        for (name, framing), expression, pose in zip(shots, expressions, poses, strict=True):
            fig = _figure(renderer, char, expression, pose, framing, size, rng.randint(1, 999))
            kind = rng.choice(KINDS)
            zoom = rng.uniform(0.8, 1.1) if framing == "portrait" else rng.uniform(0.75, 1.0)
            dx, dy = rng.uniform(-0.12, 0.12), rng.uniform(-0.06, 0.1)
            img = place(fig, background(kind, rng.randint(0, 10**6), size), zoom=zoom, dx=dx, dy=dy)
            tint = tuple(rng.uniform(0.95, 1.05) for _ in range(3))
            _save(light(img, rng.uniform(0.85, 1.15), tint), folder / f"{name}.png")
        # Impostor: a character of another family, same renderer, on this anchor's background.
        others = [c for c in chars if c[1] == renderer and c[2] != f]
        imp = rng.choice(others)
        imp_fig = _figure(renderer, imp[4], "neutral", "standing", "portrait", size, 0)
        _save(place(imp_fig, background(home[0], home[1], size)), folder / "impostor.png")

        split = "calib" if renderer == "offline" and f < max(1, families // 2) else "holdout"

        def row(other: str, same: int, kind: str, cid: str = cid, renderer: str = renderer,
                split: str = split) -> None:  # fmt: skip
            rows.append({"anchor": f"{cid}/anchor.png", "other": other, "same": str(same),
                         "kind": kind, "renderer": renderer, "split": split})  # fmt: skip

        row(f"{cid}/bg.png", 1, "same_background")
        for name in ("expr1", "expr2"):
            row(f"{cid}/{name}.png", 1, "same_expression")
        for name in ("pose1", "pose2"):
            row(f"{cid}/{name}.png", 1, "same_pose")
        for m2 in range(4):
            if m2 == m:
                continue
            sib = f"{renderer[0]}{f:02d}m{m2}"
            kind = RELATION[(min(m, m2), max(m, m2))]
            for name in ("expr1", "pose1"):
                row(f"{sib}/{name}.png", 0, kind)
        for other in rng.sample(others, 3):
            row(f"{other[0]}/{rng.choice(('bg', 'expr1', 'expr2', 'pose1', 'pose2'))}.png", 0,
                "other")  # fmt: skip
        row(f"{cid}/impostor.png", 0, "other_same_background")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "pairs.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "eval_set")
    parser.add_argument("--families", type=int, default=6)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    n = build(args.out, args.families, args.size)
    files = list(args.out.rglob("*.png"))
    total = sum(p.stat().st_size for p in files)
    print(f"{len(files)} images ({total / 1e6:.1f} MB) and {n} pairs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
