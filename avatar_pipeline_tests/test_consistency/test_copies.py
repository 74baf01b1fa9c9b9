"""Not-a-copy holds: copies of an anchor are caught, honest edits are not (a bounded sweep).

The full sweep (40 offline-provider anchors + the evaluation set's 48 characters from two
renderers) is bench/copy_sweep.py; this test runs a slice of the same code on every build.
"""

from __future__ import annotations

import pytest

from avatar_pipeline.consistency.copies import (
    COPY_MAX_CHANGED_FRACTION,
    changed_fraction,
    find_copy,
)
from avatar_pipeline_tests.test_consistency.copy_variants import (
    COPY_VARIANTS,
    anchor,
    copies_of,
    eval_set_characters,
    format_sweep,
    sweep,
)


def test_bounded_sweep_catches_every_copy_and_spares_honest_edits() -> None:
    if len(eval_set_characters(6)) < 6:
        pytest.fail("bench/eval_set is missing: run bench/make_eval_set.py")
    result = sweep(offline_anchors=5, eval_characters=6, size=256, honest_from=2)
    report = format_sweep(result)
    assert result.anchors == 11
    assert set(result.copies) == set(COPY_VARIANTS)
    assert result.copies_caught == result.copies_total == 11 * len(COPY_VARIANTS), report
    assert result.sibling_duplicates == result.sibling_duplicates_caught == 2, report
    assert len(result.honest) == 2 * 13 + 6 * 4
    # An edit that asks for the state its reference already shows (a "standing" pose of the
    # standing full body, a "neutral" face of the neutral portrait) can come back as the same
    # picture re-framed: the offline renderer's re-take moved nothing. Those are copies in
    # fact and are reported; every other honest edit must be spared.
    same_state = {"pose:standing", "expression:neutral"}
    others = [h for h in result.honest if h[1] not in same_state]
    false_others = [f for f in result.false_copies if f[1] not in same_state]
    assert len(false_others) <= 0.01 * len(others), report
    assert all(change < 0.002 for _, _, change in result.false_copies), report


def test_the_verdict_names_the_image_it_copies() -> None:
    portrait, other = anchor(0, 256), anchor(7, 256)
    copy = dict(copies_of(portrait))["shift 2%"]
    verdict = find_copy(copy, [("reference 1", other), ("primary anchor", portrait)])
    assert verdict.is_copy and verdict.closest is not None
    assert verdict.closest.against == "primary anchor"
    assert "a copy of the primary anchor" in verdict.why
    assert [c.against for c in verdict.comparisons] == ["reference 1", "primary anchor"]
    assert changed_fraction(other, portrait).changed_fraction > 10 * COPY_MAX_CHANGED_FRACTION
    assert not find_copy(other, [("primary anchor", portrait)]).is_copy
