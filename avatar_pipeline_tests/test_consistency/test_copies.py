"""Not-a-copy holds: copies of an anchor are caught, honest edits are not (a bounded sweep).

The full sweep (40 offline-provider anchors + the evaluation set's 48 characters from two
renderers) is bench/copy_sweep.py; this test runs a slice of the same code on every build.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from avatar_pipeline.consistency.copies import (
    COPY_MAX_CHANGED_FRACTION,
    changed_fraction,
    character_mask,
    find_copy,
)
from avatar_pipeline_tests.test_consistency.copy_variants import (
    COPY_VARIANTS,
    anchor,
    copies_of,
    eval_set_characters,
    format_sweep,
    honest_edits,
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
    # No slot of the model sheet asks for an anchor again (the standing pose puts the hands on
    # the hips, the full body stands arms at the sides; the neutral face is not the portrait's
    # soft smile), so every honest expression edit is a new picture, well over the threshold.
    expressions = [h for h in result.honest if h[1].startswith("expression:")]
    assert all(change > 3 * COPY_MAX_CHANGED_FRACTION for _, _, change in expressions), report
    # Known limit of the measurement, not of the edits: where the character mask finds only the
    # head of the full body (a white shirt on a pale watercolour background, offline anchor 1),
    # a pose edit changes nothing the check can see. Such a pose may be called a copy; any
    # other false copy fails.
    for name, kind, _change in result.false_copies:
        assert kind.startswith("pose:") and name.startswith("offline "), report
        assert not _mask_reaches_the_body(int(name.split()[1]), 256), (name, kind, report)


def _mask_reaches_the_body(i: int, size: int) -> bool:
    """Whether the check's character mask of offline anchor ``i``'s full body reaches its hips."""
    full = next(e for e in honest_edits(i, size, anchor(i, size)) if e.kind == "fullbody")
    with Image.open(io.BytesIO(full.image)) as img:
        mask = character_mask(np.asarray(img.convert("RGB"), dtype=np.float32))
    rows = np.flatnonzero(mask.any(axis=1))
    return bool(rows.size and rows[-1] > 0.5 * mask.shape[0])


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
