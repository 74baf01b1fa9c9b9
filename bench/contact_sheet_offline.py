"""Contact sheet of the offline provider: one character's anchors, 8 expressions and 4 poses.

Runs the same calls the pipeline makes (generate the portrait anchor, edit it into the
full-body anchor, edit expressions from the portrait and poses from both anchors) and lays the
results out in a labelled grid, plus a second sheet with the same prompt generated under
several seeds (the drift that edit() prevents). Prints render timings.

    python bench/contact_sheet_offline.py [--out var/contact_sheet_offline.png]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
from pathlib import Path

from PIL import Image, ImageDraw

from avatar_pipeline.domain.prompts import (
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    portrait_prompt,
    pose_prompt,
)
from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, DEFAULT_POSES
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest

LABEL_H = 26


def _tile(png: bytes, label: str, size: int) -> Image.Image:
    img = Image.open(io.BytesIO(png)).convert("RGB").resize((size, size))
    tile = Image.new("RGB", (size, size + LABEL_H), "white")
    tile.paste(img, (0, LABEL_H))
    ImageDraw.Draw(tile).text((6, 6), label, fill=(30, 30, 30))
    return tile


def _grid(tiles: list[Image.Image], columns: int, title: str) -> Image.Image:
    w, h = tiles[0].size
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * w + (columns + 1) * 6, rows * h + (rows + 1) * 6 + 24))
    sheet.paste((236, 236, 240), (0, 0, sheet.width, sheet.height))
    ImageDraw.Draw(sheet).text((8, 6), title, fill=(20, 20, 20))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet.paste(tile, (6 + c * (w + 6), 30 + r * (h + 6)))
    return sheet


async def build(args: argparse.Namespace) -> tuple[Image.Image, Image.Image, list[float]]:
    provider = OfflineProvider()
    kit = KitPrompts(args.appearance, args.style, args.negative).validate()
    size, timings = args.size, []

    async def timed(coro):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = await coro
        timings.append(time.perf_counter() - start)
        return result.images[0]

    portrait = await timed(
        provider.generate(
            GenerateRequest(portrait_prompt(kit), kit.negative_prompt, size, size, seed=args.seed)
        )
    )

    def edit(prompt: str, refs: tuple[bytes, ...]) -> EditRequest:
        return EditRequest(
            prompt, refs, kit.negative_prompt, args.strength, size, size, seed=args.seed
        )

    fullbody = await timed(provider.edit(edit(fullbody_prompt(kit), (portrait,))))
    tiles = [_tile(portrait, "anchor: portrait", 256), _tile(fullbody, "anchor: full body", 256)]
    for pose in DEFAULT_POSES:
        png = await timed(provider.edit(edit(pose_prompt(kit, pose), (portrait, fullbody))))
        tiles.append(_tile(png, f"pose: {pose.name}", 256))
    tiles += [Image.new("RGB", tiles[0].size, (236, 236, 240))] * 2
    for expression in DEFAULT_EXPRESSIONS:
        png = await timed(provider.edit(edit(expression_prompt(kit, expression), (portrait,))))
        tiles.append(_tile(png, f"expression: {expression.name}", 256))
    sheet = _grid(tiles, 8, f"offline provider  |  {args.appearance}  |  {args.style}")

    seed_tiles = []
    for seed in range(1, 5):
        result = await provider.generate(
            GenerateRequest(portrait_prompt(kit), kit.negative_prompt, size, size, seed=seed)
        )
        seed_tiles.append(_tile(result.images[0], f"generate() seed={seed}", 256))
    seeds = _grid(seed_tiles, 4, "same prompt, different seeds (generate, no reference)")
    return sheet, seeds, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/contact_sheet_offline.png"))
    parser.add_argument(
        "--seeds-out", type=Path, default=Path("var/contact_sheet_offline_seeds.png")
    )
    parser.add_argument(
        "--appearance",
        default="a young woman with long silver hair, violet eyes, "
        "wearing a green cardigan over a white blouse",
    )
    parser.add_argument("--style", default="anime style, cel shading")
    parser.add_argument("--negative", default="different hairstyle, extra fingers, blurry")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--strength", type=float, default=0.7)
    parser.add_argument("--size", type=int, default=1024, help="render size of each image")
    args = parser.parse_args()
    sheet, seeds, timings = asyncio.run(build(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    args.seeds_out.parent.mkdir(parents=True, exist_ok=True)
    seeds.save(args.seeds_out)
    print(f"wrote {args.out} and {args.seeds_out}")
    print(
        f"{len(timings)} calls at {args.size}x{args.size}: "
        f"median {statistics.median(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms "
        "(render + PNG encode, edits include decoding the reference)"
    )


if __name__ == "__main__":
    main()
