"""Character isolation on art this code did not draw: renderer_b and the offline renderer,
matted out and placed on flat, gradient, patterned and scenery backgrounds."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from avatar_pipeline.consistency.isolation import (
    NEUTRAL_FILL,
    BorderModelSegmenter,
    Isolation,
    isolate,
)
from avatar_pipeline.imaging.offline.character import RenderState, identity_from_prompt
from avatar_pipeline.imaging.offline.prompt_parser import parse_prompt
from avatar_pipeline_tests.eval_art import renderer_b
from avatar_pipeline_tests.eval_art.backgrounds import KINDS, background
from avatar_pipeline_tests.eval_art.compose import light, place
from avatar_pipeline_tests.eval_art.offline_figures import figure_rgba

SIZE = 256


def _truth(figure: Image.Image, zoom: float, dx: float, dy: float, side: int) -> np.ndarray:
    """The figure's own alpha, placed exactly as the picture was, at the working size."""
    canvas = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    alpha = place(figure, canvas.convert("RGB"), zoom=zoom, dx=dx, dy=dy)  # positions only
    del alpha
    blank = Image.new("L", (SIZE, SIZE), 0)
    a = figure.split()[3]
    if zoom != 1.0:
        a = a.resize((round(a.width * zoom), round(a.height * zoom)), Image.Resampling.LANCZOS)
    blank.paste(
        a, (round((SIZE - a.width) / 2 + dx * SIZE), round((SIZE - a.height) / 2 + dy * SIZE))
    )
    return np.asarray(blank.resize((side, side), Image.Resampling.BILINEAR)) >= 128


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _figures() -> list[tuple[str, Image.Image]]:
    import random

    rng = random.Random(7)
    b1 = renderer_b.random_character(rng)
    b2 = renderer_b.random_character(rng)
    ident = identity_from_prompt(parse_prompt("an anime girl"), 42)
    return [
        ("b-portrait", renderer_b.render_b(b1, framing="portrait", size=SIZE)),
        ("b-fullbody", renderer_b.render_b(b2, pose="waving", framing="fullbody", size=SIZE)),
        ("offline-portrait", figure_rgba(ident, RenderState(), SIZE)),
        (
            "offline-fullbody",
            figure_rgba(ident, RenderState(pose="walking", framing="fullbody"), SIZE),
        ),
    ]


FIGURES = _figures()


@pytest.mark.parametrize("kind", KINDS)
def test_mask_matches_the_drawn_figure_on_every_background(kind: str) -> None:
    scores = []
    for i, (name, figure) in enumerate(FIGURES):
        zoom, dx, dy = (0.85, 0.06, 0.04) if i % 2 else (1.0, -0.05, 0.0)
        img = light(place(figure, background(kind, i, SIZE), zoom=zoom, dx=dx, dy=dy), 1.1)
        iso = isolate(img)
        truth = _truth(figure, zoom, dx, dy, iso.mask.shape[0])
        scores.append((name, _iou(iso.mask, truth)))
    values = [s for _, s in scores]
    if kind in ("flat", "gradient", "stripes", "checks", "dots"):
        assert min(values) >= 0.85, scores  # measured min 0.87 (gradient 0.90; was 0.70)
    else:
        # Known limits, measured: a hill that touches the figure's feet but reaches the frame
        # on one side only stays glued to the figure (IoU 0.63 for a small full-body figure on
        # sky_ground); a room's furniture next to the figure (room: 0.75).
        assert min(values) >= 0.6, scores
        assert np.mean(values) >= 0.75, scores


def test_box_crop_and_neutral_fill() -> None:
    _, figure = FIGURES[1]
    img = place(figure, background("stripes", 3, SIZE), zoom=0.8, dx=0.1)
    iso = isolate(img)
    truth = _truth(figure, 0.8, 0.1, 0.0, iso.mask.shape[0])
    ys, xs = np.nonzero(truth)
    x0, y0, x1, y1 = iso.box
    assert abs(x0 - xs.min()) <= 3 and abs(x1 - 1 - xs.max()) <= 3
    assert abs(y0 - ys.min()) <= 3 and abs(y1 - 1 - ys.max()) <= 3
    crop = np.asarray(iso.crop(96))
    assert crop.shape == (96, 96, 3)
    corners = crop[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == NEUTRAL_FILL).all()  # no background pixel reaches the crop's margin
    neutral = np.asarray(iso.on_neutral())
    assert (neutral[~iso.mask] == NEUTRAL_FILL).all()
    assert 0.05 < iso.foreground_fraction < 0.5
    sx0, sy0, sx1, sy1 = iso.source_box
    assert sx1 <= SIZE and sy1 <= SIZE and sx0 < sx1 and sy0 < sy1


def test_the_same_character_crops_alike_on_any_background() -> None:
    _, figure = FIGURES[0]
    crops = []
    for kind in ("flat", "checks", "sky_ground"):
        iso = isolate(place(figure, background(kind, 11, SIZE)))
        crops.append(np.asarray(iso.crop(64), dtype=float))
    for other in crops[1:]:
        assert np.abs(other - crops[0]).mean() < 12  # grey levels; backgrounds differ by ~60


def test_character_cut_by_the_frame_keeps_its_cut_parts() -> None:
    _, figure = FIGURES[0]
    # pushed up and right: hair cut by the top edge, shoulder by the right edge
    img = place(figure, background("gradient", 5, SIZE), zoom=1.1, dx=0.12, dy=-0.12)
    iso = isolate(img)
    truth = _truth(figure, 1.1, 0.12, -0.12, iso.mask.shape[0])
    assert _iou(iso.mask, truth) >= 0.85
    assert iso.mask[0].any()  # the hair at the top edge is the character, not background


def test_nothing_to_isolate_uses_the_frame_and_says_so() -> None:
    iso = isolate(Image.new("RGB", (300, 200), (120, 180, 90)))
    assert not iso.found
    assert iso.mask.all() and "no foreground" in iso.notes[0]


def test_bytes_in_and_large_images_are_worked_small() -> None:
    _, figure = FIGURES[2]
    img = place(figure, background("dots", 1, SIZE)).resize((1024, 1024))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    iso = isolate(buf.getvalue())
    assert max(iso.image.size) == 128 and iso.source_size == (1024, 1024)
    assert iso.scale == pytest.approx(0.125)
    sharp = iso.crop(256, source=img)
    assert sharp.size == (256, 256)


def test_a_segmenter_with_weights_plugs_in() -> None:
    class HalfSegmenter:
        name = "test-half"

        def segment(self, image: Image.Image) -> np.ndarray:
            mask = np.zeros((image.height, image.width), float)
            mask[:, : image.width // 2] = 0.9
            return mask

    iso = isolate(Image.new("RGB", (100, 100), (1, 2, 3)), segmenter=HalfSegmenter())
    assert isinstance(iso, Isolation) and iso.method == "test-half"
    assert iso.box == (0, 0, 50, 100)

    class Broken:
        name = "broken"

        def segment(self, image: Image.Image) -> np.ndarray:
            return np.ones((3, 3), bool)

    with pytest.raises(ValueError, match="broken returned a"):
        isolate(Image.new("RGB", (100, 100)), segmenter=Broken())
    assert BorderModelSegmenter().name.startswith("border-model")
