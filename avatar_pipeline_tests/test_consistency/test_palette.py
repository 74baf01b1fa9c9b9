"""The palette contract on renderer_b characters (colours known, drawn by another routine)."""

from __future__ import annotations

import io
import json
import random
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from avatar_pipeline.consistency.colour import ciede2000, hex_rgb, rgb_to_lab
from avatar_pipeline.consistency.palette import (
    PaletteContract,
    compare_palette,
    extract_palette,
)
from avatar_pipeline_tests.eval_art import renderer_b
from avatar_pipeline_tests.eval_art.backgrounds import background
from avatar_pipeline_tests.eval_art.compose import light, place

CHAR = replace(
    renderer_b.random_character(random.Random(3)),
    hair=(27, 26, 34),
    skin=(241, 194, 150),
    outfit=(40, 110, 200),
    hair_style="bob",
    accessory="none",
)


def _png(char: renderer_b.CharacterB, kind: str = "flat", seed: int = 1, **render: object) -> bytes:
    figure = renderer_b.render_b(char, size=256, **render)  # type: ignore[arg-type]
    img = place(figure, background(kind, seed, 256))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _de(hex_value: str, rgb: tuple[int, int, int]) -> float:
    lab = rgb_to_lab(np.array([hex_rgb(hex_value), rgb], dtype=np.uint8))
    return float(ciede2000(lab[0], lab[1]))


@pytest.fixture(scope="module")
def contract() -> PaletteContract:
    return extract_palette(_png(CHAR, "stripes"))


def test_key_colours_are_named_by_region(contract: PaletteContract) -> None:
    names = [c.name for c in contract.colours]
    assert names[:2] == ["hair", "skin"] and "outfit" in names
    assert _de(contract.get("hair").hex, CHAR.hair) < 5  # type: ignore[union-attr]
    assert _de(contract.get("skin").hex, CHAR.skin) < 5  # type: ignore[union-attr]
    assert _de(contract.get("outfit").hex, CHAR.outfit) < 5  # type: ignore[union-attr]
    eyes = contract.get("eyes")
    assert eyes is not None and _de(eyes.hex, CHAR.eyes) < 20
    assert sum(c.share for c in contract.colours) + 0.2 >= 0.99  # shares are of the character
    assert all(0 < c.share < 1 for c in contract.colours)


def test_contract_round_trips_through_json(contract: PaletteContract) -> None:
    data = json.loads(json.dumps(contract.as_dict()))
    assert PaletteContract.from_dict(data) == PaletteContract.from_dict(contract.as_dict())
    assert data["colours"][0]["hex"].startswith("#")
    with pytest.raises(ValueError, match="not a palette contract"):
        PaletteContract.from_dict({"colours": [{"name": "hair"}]})


def test_same_character_passes_on_other_backgrounds_poses_and_light(
    contract: PaletteContract,
) -> None:
    for kind, render in (
        ("checks", {"expression": "happy"}),
        ("sky_ground", {"pose": "waving", "framing": "fullbody"}),
        ("gradient", {"expression": "sad"}),
    ):
        comparison = compare_palette(contract, _png(CHAR, kind, **render))
        assert comparison.measured
        assert comparison.passed, comparison.verdict
        assert comparison.verdict.startswith("palette matches")


def test_a_drifted_hair_colour_is_named_with_both_hexes(contract: PaletteContract) -> None:
    drifted = replace(CHAR, hair=(107, 59, 34))
    comparison = compare_palette(contract, _png(drifted, "dots"))
    assert not comparison.passed
    hair = next(d for d in comparison.deltas if d.name == "hair")
    assert not hair.passed and hair.delta_e > 12
    anchor_hex = contract.get("hair").hex  # type: ignore[union-attr]
    assert f"hair ΔE {hair.delta_e:.0f} ({anchor_hex} → {hair.candidate_hex})" in comparison.verdict
    assert _de(hair.candidate_hex or "", drifted.hair) < 8
    assert all(d.name != "skin" for d in comparison.drifted)
    assert comparison.as_dict()["deltas"][0]["name"] == "hair"


def test_a_lighter_picture_is_not_a_drift(contract: PaletteContract) -> None:
    figure = renderer_b.render_b(CHAR, size=256, expression="shy")
    img = light(place(figure, background("flat", 9, 256)), 1.08, (1.02, 1.0, 0.98))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    assert compare_palette(contract, buf.getvalue()).passed


def test_explicit_limit_and_unmeasured(contract: PaletteContract) -> None:
    strict = compare_palette(contract, _png(CHAR, "checks"), max_delta_e=0.01)
    assert not strict.passed and strict.max_delta_e == 0.01
    empty = Image.new("RGB", (64, 64), (90, 90, 90))
    buf = io.BytesIO()
    empty.save(buf, format="PNG")
    blank = compare_palette(contract.as_dict(), buf.getvalue())
    assert not blank.measured and not blank.passed
    assert blank.verdict.startswith("palette not measured")


def test_clustering_distinct_colours_with_counts_equals_clustering_every_pixel() -> None:
    """The palette clusters each distinct colour once, weighted by its pixel count: the same
    clusters, shares and per-pixel labels as clustering every pixel."""
    from avatar_pipeline.consistency.palette import _cluster

    with Image.open(io.BytesIO(_png(CHAR, "stripes"))) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.uint8).reshape(-1, 3)
    distinct, inverse, counts = np.unique(pixels, axis=0, return_inverse=True, return_counts=True)
    per_pixel = _cluster(rgb_to_lab(pixels))
    per_colour = _cluster(rgb_to_lab(distinct), counts)
    assert len(per_colour.centres) == len(per_pixel.centres) > 5
    assert np.allclose(per_colour.centres, per_pixel.centres, atol=1e-9)
    assert np.array_equal(per_colour.shares, per_pixel.shares)
    assert np.array_equal(per_colour.labels[inverse.reshape(-1)], per_pixel.labels)


def test_the_copy_and_palette_checks_isolate_each_image_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from avatar_pipeline.consistency import copies

    calls: list[int] = []
    real = copies.isolate

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(copies, "isolate", counting)
    monkeypatch.setattr(copies, "_ISOLATIONS", type(copies._ISOLATIONS)())
    monkeypatch.setattr(copies, "_PREPARED", type(copies._PREPARED)())
    anchor = _png(CHAR, "stripes", seed=5)
    candidate = _png(CHAR, "checks", seed=6, expression="happy")
    contract = extract_palette(anchor)
    copies.find_copy(candidate, [("primary anchor", anchor)])
    assert compare_palette(contract, candidate).passed
    assert len(calls) == 2
