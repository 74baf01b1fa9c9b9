"""Same-kit identity scores of the weight-free scorer on offline-provider kits.

12 kits made with the pipeline's own prompts (portrait by generate(); full body, the default
expressions and poses by edit()), scored against the kit's portrait anchor; other kits' images
against each anchor. Prints min/p5/median (same kit), max/p95/median (other kits) and the pass
rates at the shipped threshold.

    .venv/bin/python bench/offline_kit_scores.py [--size 512]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for  # noqa: E402
from avatar_pipeline.domain.prompts import (  # noqa: E402
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    portrait_prompt,
    pose_prompt,
)
from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, DEFAULT_POSES  # noqa: E402
from avatar_pipeline.imaging.providers.offline import OfflineProvider  # noqa: E402
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest  # noqa: E402

KITS = [
    ("a girl with red hair and green eyes in a blue cardigan", "anime style"),
    ("an old man with a grey beard and glasses in a brown suit", "watercolor"),
    ("a boy with black hair in a yellow raincoat", "cartoon"),
    ("a woman with blonde hair and blue eyes in a red dress", "anime style"),
    ("a knight with silver armour and a purple cape", "pixel art"),
    ("a girl with pink hair and a white school uniform", "anime style"),
    ("a man with brown hair in a green hoodie", "realistic"),
    ("a girl with blue hair and orange eyes in a black jacket", "cartoon"),
    ("a wizard with a white beard in a blue robe", "watercolor"),
    ("a boy with red hair and freckles in a striped shirt", "anime style"),
    ("a woman with black hair in a teal kimono", "realistic"),
    ("a girl with purple hair in a pink sweater", "pixel art"),
]


Kit = tuple[bytes, list[bytes], list[bytes]]


async def _kit(desc: str, style: str, seed: int, size: int) -> Kit:
    provider = OfflineProvider()
    prompts = KitPrompts(desc, style)
    request = GenerateRequest(portrait_prompt(prompts), width=size, height=size, seed=seed)
    anchor = (await provider.generate(request)).images[0]

    async def edit(prompt: str, refs: tuple[bytes, ...], s: int) -> bytes:
        edit_request = EditRequest(prompt, refs, width=size, height=size, seed=s)
        return (await provider.edit(edit_request)).images[0]

    fullbody = await edit(fullbody_prompt(prompts), (anchor,), seed + 1)
    expressions = [
        await edit(expression_prompt(prompts, e), (anchor,), seed + 10 + i)
        for i, e in enumerate(DEFAULT_EXPRESSIONS)
    ]
    poses = [
        await edit(pose_prompt(prompts, p), (anchor, fullbody), seed + 30 + i)
        for i, p in enumerate(DEFAULT_POSES)
    ]
    return anchor, expressions, [fullbody, *poses]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    embedder = PerceptualEmbedder()
    threshold = thresholds_for(embedder.info).identity_min
    vectors = []
    for i, (desc, style) in enumerate(KITS):
        anchor, expressions, bodies = asyncio.run(_kit(desc, style, 100 + 7 * i, args.size))
        v = embedder.embed_images([anchor, *expressions, *bodies])
        vectors.append((v[0], v[1 : 1 + len(expressions)], v[1 + len(expressions) :]))
    expr = np.concatenate([e @ a for a, e, _ in vectors])
    body = np.concatenate([b @ a for a, _, b in vectors])
    others = np.array([x @ vectors[i][0] for i in range(len(vectors)) for j in range(len(vectors))
                       if j != i for x in np.vstack([vectors[j][1], vectors[j][2]])])  # fmt: skip
    print(f"{embedder.info.model}, {args.size} px, threshold {threshold:.3f}")
    for name, v in (("same kit, expression edits", expr), ("same kit, full body + poses", body)):
        print(f"  {name:28} n={len(v):4} min {v.min():.3f} p5 {np.percentile(v, 5):.3f} "
              f"median {np.median(v):.3f}")  # fmt: skip
    print(f"  {'other kits images':28} n={len(others):4} max {others.max():.3f} "
          f"p95 {np.percentile(others, 95):.3f} median {np.median(others):.3f}")  # fmt: skip
    same = np.r_[expr, body]
    print(f"  at {threshold:.3f}: same kit pass {100 * np.mean(same >= threshold):.1f} %, other "
          f"kits' images pass {100 * np.mean(others >= threshold):.2f} %")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
