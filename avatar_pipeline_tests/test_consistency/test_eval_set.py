"""The identity gate on (half of) bench/eval_set, weight-free scorer, shipped threshold.

The set is art this code did not shape: two independent drawing routines, random backgrounds,
lighting and framing, hard negatives sharing hair and/or outfit colour (see
bench/make_eval_set.py). Targets of issue 8 that the weight-free scorer meets are asserted as
targets; the two it does not meet (FAR <= 3 %, FRR <= 5 %) are asserted at the level measured
(bench/bench_gate.py, notes_gate_score.md) so that a regression still fails.
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
    assert roc_auc(scores, labels) >= 0.97
    pos = [r.identity for r in results if r.pair.same]
    hard = [r.identity for r in results if r.pair.kind in HARD]
    assert roc_auc(pos + hard, [True] * len(pos) + [False] * len(hard)) >= 0.95


def test_background_alone_never_changes_the_verdict(results) -> None:  # type: ignore[no-untyped-def]
    threshold = thresholds_for(PerceptualEmbedder.info).identity_min
    same_bg = [r for r in results if r.pair.kind == "same_background"]
    assert sum(r.identity >= threshold for r in same_bg) / len(same_bg) >= 0.95
    impostors = [r for r in results if r.pair.kind == "other_same_background"]
    assert sum(r.identity >= threshold for r in impostors) / len(impostors) <= 0.10


def test_rates_at_the_shipped_threshold(results) -> None:  # type: ignore[no-untyped-def]
    threshold = thresholds_for(PerceptualEmbedder.info).identity_min
    rates = rates_at([r.identity for r in results], [bool(r.pair.same) for r in results], threshold)
    assert rates.frr is not None and rates.far is not None
    # measured on the full set: FRR 5.8 %, FAR 11.0 % (targets 5 % / 3 % not met; see notes)
    assert rates.frr <= 0.08
    assert rates.far <= 0.14
    others = [r for r in results if r.pair.kind == "other"]
    assert sum(r.identity >= threshold for r in others) / len(others) <= 0.05
