"""The identity gate on the evaluation set: ROC AUC, FAR and FRR per kind of pair.

Scores every pair of ``bench/eval_set/pairs.csv`` (make it with bench/make_eval_set.py) with
the weight-free (perceptual) embedder, exactly as the gate scores an image against its
primary anchor, and prints one table for all pairs, one for the calibration split and one for
the held-out split, at the shipped threshold; then how the shipped mark was chosen (the mark
that best meets FAR <= 3 % and FRR <= 5 % on all pairs) and what that rule is worth on pairs it
did not see: leave-one-family-out (12 families of 4 characters, each judged at the mark chosen
on the other 11) and leave-one-renderer-out; plus the palette check's pass rates.

    .venv/bin/python bench/bench_gate.py [--pairs bench/eval_set/pairs.csv] [--palette] [--nested]

``--nested`` also re-embeds the set under each configuration v5 was chosen among (the bust's
depth x the skin kernel's width) and, per family, chooses the configuration *and* the mark on
the other 11 families only: the estimate that no choice made by looking at the set flatters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for  # noqa: E402
from avatar_pipeline.consistency.evaluation import (  # noqa: E402
    FAR_TARGET,
    FRR_TARGET,
    cross_validated_rates,
    eer_threshold,
    format_table,
    read_pairs,
    roc_auc,
    score_pairs,
    summarise,
    target_threshold,
)

HARD = ("hard_hair", "hard_outfit", "hard_both")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=ROOT / "bench" / "eval_set" / "pairs.csv")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--palette", action="store_true", help="also measure the palette check")
    parser.add_argument(
        "--nested", action="store_true", help="nested leave-one-family-out over v5's choices"
    )
    args = parser.parse_args()
    embedder = PerceptualEmbedder()
    threshold = args.threshold or thresholds_for(embedder.info).identity_min
    pairs = read_pairs(args.pairs)
    start = time.perf_counter()
    results = score_pairs(embedder, pairs)
    elapsed = time.perf_counter() - start
    n_images = len({p.anchor_path for p in pairs} | {p.other_path for p in pairs})
    print(f"embedder {embedder.info.model}; threshold {threshold:.3f}; {len(pairs)} pairs, "
          f"{n_images} images embedded in {elapsed:.1f} s ({1000 * elapsed / n_images:.0f} ms "
          "per 256 px image)\n")  # fmt: skip
    for split in ("all", "calib", "holdout"):
        rows = [r for r in results if split == "all" or r.pair.extra.get("split") == split]
        if not rows:
            continue
        print(f"### {split} ({len(rows)} pairs)\n")
        print(format_table(summarise(rows, threshold)))
        pos = [r.identity for r in rows if r.pair.same]
        hard = [r.identity for r in rows if r.pair.kind in HARD]
        if pos and hard:
            auc = roc_auc(pos + hard, [True] * len(pos) + [False] * len(hard))
            print(f"\nhard negatives (hair, outfit or both shared; {len(hard)} pairs) against "
                  f"every same pair: ROC AUC {auc:.3f}")  # fmt: skip
        print()
        for renderer in ("offline", "b"):
            sub = [r for r in rows if r.pair.extra.get("renderer") == renderer]
            if sub and split == "all":
                row = summarise(sub, threshold)[0]
                print(f"renderer {renderer}: AUC {row.auc:.3f}, FAR {100 * (row.far or 0):.1f} %, "
                      f"FRR {100 * (row.frr or 0):.1f} %")  # fmt: skip
        print()
    _choice(results)
    calib = [r for r in results if r.pair.extra.get("split") == "calib"]
    eer = eer_threshold([r.identity for r in calib], [bool(r.pair.same) for r in calib])
    if eer is not None:
        print(f"calibration split: EER threshold {eer.threshold:.3f} "
              f"(FAR {100 * (eer.far or 0):.1f} %, FRR {100 * (eer.frr or 0):.1f} %)")  # fmt: skip
    if args.nested:
        _nested(pairs)
    if args.palette:
        _palette(pairs)
    return 0


def _family(result: object) -> str:
    """The eval set's family of an anchor: its folder without the member digit (o03m2 -> o03)."""
    return result.pair.anchor_path.parent.name[:3]  # type: ignore[attr-defined]


def _choice(results: list) -> None:
    """The shipping rule (thresholds.py) on all pairs, and the same rule cross-validated."""
    scores = [r.identity for r in results]
    labels = [bool(r.pair.same) for r in results]
    chosen = target_threshold(scores, labels)
    if chosen is None:
        return
    print(f"shipping rule (the mark best meeting FAR <= 3 % and FRR <= 5 %) on all pairs: "
          f"{chosen.threshold:.3f} (FAR {100 * (chosen.far or 0):.1f} %, "
          f"FRR {100 * (chosen.frr or 0):.1f} %)")  # fmt: skip
    for name, groups in (
        ("leave-one-family-out", [_family(r) for r in results]),
        ("leave-one-renderer-out", [str(r.pair.extra.get("renderer")) for r in results]),
    ):
        if len(set(groups)) < 2:
            continue
        pooled, marks = cross_validated_rates(scores, labels, groups)
        print(f"{name} ({len(marks)} folds, marks {min(marks.values()):.3f}-"
              f"{max(marks.values()):.3f}): FAR {100 * (pooled.far or 0):.1f} %, "
              f"FRR {100 * (pooled.frr or 0):.1f} % on pairs outside the fold")  # fmt: skip


def _nested(pairs: list) -> None:
    """Per family: the configuration and the mark chosen on the other families, judged on it."""
    from avatar_pipeline.consistency.embedders import perceptual

    shipped = (perceptual._BUST, perceptual._SKIN_SIGMA)
    labels = np.array([bool(p.same) for p in pairs])
    families = np.array([p.anchor_path.parent.name[:3] for p in pairs])
    scores: dict[tuple[float, float], np.ndarray] = {}
    try:
        for bust in (1e9, 1.5, 2.0, 2.5):  # 1e9: the whole figure (v4's presence)
            for sigma in (0.012, 0.016, 0.020):
                perceptual._BUST, perceptual._SKIN_SIGMA = bust, sigma
                rows = score_pairs(PerceptualEmbedder(), pairs)
                scores[(bust, sigma)] = np.array([r.identity for r in rows])
    finally:
        perceptual._BUST, perceptual._SKIN_SIGMA = shipped

    def cost(s: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
        t = target_threshold(s[keep], labels[keep])
        assert t is not None and t.far is not None and t.frr is not None
        return max(t.far / FAR_TARGET, t.frr / FRR_TARGET), t.threshold

    accepted = rejected = 0
    chosen = []
    for family in sorted(set(families.tolist())):
        train, test = families != family, families == family
        config = min(scores, key=lambda k: cost(scores[k], train)[0])
        mark = cost(scores[config], train)[1]
        chosen.append(config)
        s = scores[config]
        accepted += int((s[test & ~labels] >= mark).sum())
        rejected += int((s[test & labels] < mark).sum())
    print(f"nested leave-one-family-out (bust depth x skin sigma x mark chosen without the "
          f"family; configurations chosen: {sorted(set(chosen))}): FAR "
          f"{100 * accepted / (~labels).sum():.1f} %, FRR "
          f"{100 * rejected / labels.sum():.1f} %")  # fmt: skip


def _palette(pairs: list) -> None:
    from avatar_pipeline.consistency.palette import compare_palette, extract_palette

    contracts = {}
    by_kind: dict[str, list[float]] = {}
    for p in pairs:
        if p.anchor_path not in contracts:
            contracts[p.anchor_path] = extract_palette(p.anchor_path.read_bytes())
        cmp = compare_palette(contracts[p.anchor_path], p.other_path.read_bytes())
        worst = cmp.worst.delta_e if cmp.worst else 0.0
        by_kind.setdefault(("same " if p.same else "diff ") + p.kind, []).append(worst)
    print("\npalette: worst ΔE00 per pair (p5 / median / p95)")
    for kind, values in sorted(by_kind.items()):
        v = np.asarray(values)
        print(f"  {kind:28} n={len(v):3}  {np.percentile(v, 5):5.1f} {np.median(v):5.1f} "
              f"{np.percentile(v, 95):5.1f}")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
