"""The identity gate on (half of) bench/eval_set, weight-free scorer, shipped threshold.

The set is art this code did not shape: two independent drawing routines, random backgrounds,
lighting and framing, hard negatives sharing hair and/or outfit colour (see
bench/make_eval_set.py). Targets of issue 8 that the weight-free scorer meets are asserted as
targets (or tighter, at the level measured); FAR and FRR, which it does not both meet on the
full set (character-lab-head-v4 at 0.858: FAR 1.9 %, FRR 7.5 %; targets 3 % / 5 %), are asserted
at the level measured on this subset (FAR 1.9 %, FRR 6.25 %, bench/bench_gate.py,
.gl/notes_gate.md) so that a regression fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for
from avatar_pipeline.consistency.evaluation import rates_at, read_pairs, roc_auc, score_pairs

PAIRS = Path(__file__).resolve().parents[2] / "bench" / "eval_set" / "pairs.csv"
HARD = ("hard_hair", "hard_outfit", "hard_both")


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    if not PAIRS.is_file():
        pytest.fail(f"{PAIRS} is missing: run `.venv/bin/python bench/make_eval_set.py`")
    # families 0 and 3 of both renderers: a third of the characters, every kind of pair
    pairs = [p for p in read_pairs(PAIRS) if int(p.anchor[1:3]) % 3 == 0]
    assert len(pairs) >= 200
    return score_pairs(PerceptualEmbedder(), pairs)


def test_identity_separates_characters(results) -> None:  # type: ignore[no-untyped-def]
    scores = [r.identity for r in results]
    labels = [bool(r.pair.same) for r in results]
    assert roc_auc(scores, labels) >= 0.99  # measured 0.994 (full set 0.993; target 0.97)
    pos = [r.identity for r in results if r.pair.same]
    hard = [r.identity for r in results if r.pair.kind in HARD]
    # measured 0.992 (full set 0.987; target 0.95)
    assert roc_auc(pos + hard, [True] * len(pos) + [False] * len(hard)) >= 0.985


def test_background_alone_never_changes_the_verdict(results) -> None:  # type: ignore[no-untyped-def]
    threshold = thresholds_for(PerceptualEmbedder.info).identity_min
    same_bg = [r for r in results if r.pair.kind == "same_background"]
    assert sum(r.identity >= threshold for r in same_bg) / len(same_bg) >= 0.95
    impostors = [r for r in results if r.pair.kind == "other_same_background"]
    # measured 0 of 16 (full set 2.1 %)
    assert sum(r.identity >= threshold for r in impostors) / len(impostors) <= 0.0625


def test_rates_at_the_shipped_threshold(results) -> None:  # type: ignore[no-untyped-def]
    threshold = thresholds_for(PerceptualEmbedder.info).identity_min
    rates = rates_at([r.identity for r in results], [bool(r.pair.same) for r in results], threshold)
    assert rates.frr is not None and rates.far is not None
    # this subset: FRR 6.25 % (5/80), FAR 1.9 % (3/160); full set FRR 7.5 %, FAR 1.9 %
    # (targets 5 % / 3 %: FAR met, FRR not, on the full set; see .gl/notes_gate.md)
    assert rates.frr <= 0.0625
    assert rates.far <= 0.025
    others = [r for r in results if r.pair.kind == "other"]
    assert sum(r.identity >= threshold for r in others) / len(others) <= 0.03  # measured 2.1 %
    twins = [r for r in results if r.pair.kind == "hard_both"]
    assert sum(r.identity >= threshold for r in twins) / len(twins) <= 0.1875  # measured 12.5 %
