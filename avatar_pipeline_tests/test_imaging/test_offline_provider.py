"""The offline provider: a procedural renderer that honours prompts and keeps identity on edit.

Images are judged the way a reviewer (or the consistency checker) would: perceptual hashes,
colour histograms and the dominant colour of the hair / cheek / neck-side regions, located with
the renderer's own ``region_boxes`` for the identity embedded in each PNG.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import time

import imagehash
import numpy as np
import pytest
from PIL import Image

from avatar_pipeline.domain.prompts import (
    KitPrompts,
    expression_prompt,
    fullbody_prompt,
    portrait_prompt,
    pose_prompt,
)
from avatar_pipeline.domain.vocab import (
    DEFAULT_EXPRESSIONS,
    DEFAULT_POSES,
    EXPRESSION_NAMES,
    EXPRESSIONS_BY_NAME,
    POSE_NAMES,
    POSES_BY_NAME,
)
from avatar_pipeline.imaging.offline import (
    IDENTITY_KEY,
    dominant_colour,
    read_embedded,
    region_boxes,
    strip_identity,
)
from avatar_pipeline.imaging.offline.character import (
    COLOURS,
    EXPRESSIONS,
    POSES,
    identity_from_prompt,
)
from avatar_pipeline.imaging.offline.prompt_parser import parse_negative, parse_prompt
from avatar_pipeline.imaging.providers.offline import OFFLINE_MODEL, OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, InvalidImageRequestError

SIZE = 384
KIT = KitPrompts(
    appearance_prompt="a young woman with long silver hair, violet eyes, "
    "wearing a green cardigan over a white blouse",
    style_prompt="anime style, cel shading",
    negative_prompt="different hairstyle, extra fingers, blurry",
)


# -- helpers ---------------------------------------------------------------------------------
def decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


def region_colour(png: bytes, region: str) -> tuple[int, int, int]:
    img = decode(png)
    embedded = read_embedded(img)
    assert embedded is not None, "every offline render carries its identity chunk"
    identity, state = embedded
    return dominant_colour(img, region_boxes(identity, state, img.width, img.height)[region])


def region_pixels(png: bytes, *regions: str) -> Image.Image:
    """The named regions cropped, resized to 32x32 each and stacked side by side."""
    img = decode(png)
    identity, state = read_embedded(img)  # type: ignore[misc]
    boxes = region_boxes(identity, state, img.width, img.height)
    crops = [img.convert("RGB").crop(boxes[r]).resize((32, 32)) for r in regions]
    out = Image.new("RGB", (32 * len(crops), 32))
    for i, crop in enumerate(crops):
        out.paste(crop, (32 * i, 0))
    return out


def nearest_name(rgb: tuple[int, int, int], names: tuple[str, ...]) -> str:
    return min(names, key=lambda n: math.dist(COLOURS[n], rgb))


def phash_distance(a: Image.Image, b: Image.Image, hash_size: int = 8) -> int:
    return int(imagehash.phash(a, hash_size=hash_size) - imagehash.phash(b, hash_size=hash_size))


def histogram_distance(a: Image.Image, b: Image.Image) -> float:
    """Total-variation distance between 8x8x8-bin colour histograms (0 same .. 1 disjoint)."""

    def hist(img: Image.Image) -> np.ndarray:
        q = np.asarray(img.convert("RGB").resize((64, 64)), dtype=np.int32) // 32
        keys = q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]
        counts = np.bincount(keys.ravel(), minlength=512).astype(float)
        return counts / counts.sum()

    return float(0.5 * np.abs(hist(a) - hist(b)).sum())


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(
        np.abs(np.asarray(a.convert("RGB"), float) - np.asarray(b.convert("RGB"), float)).mean()
    )


@pytest.fixture
def provider() -> OfflineProvider:
    return OfflineProvider()


async def generate(
    provider: OfflineProvider, prompt: str, seed: int | None = 1, **kw: int
) -> bytes:
    result = await provider.generate(
        GenerateRequest(
            prompt, width=kw.get("width", SIZE), height=kw.get("height", SIZE), seed=seed
        )
    )
    return result.images[0]


async def edit(
    provider: OfflineProvider, prompt: str, *refs: bytes, strength: float = 0.7, seed: int = 5
) -> bytes:
    result = await provider.edit(
        EditRequest(prompt, refs, edit_strength=strength, width=SIZE, height=SIZE, seed=seed)
    )
    return result.images[0]


# -- determinism and the provider contract ---------------------------------------------------
async def test_same_request_and_seed_give_identical_bytes(provider: OfflineProvider) -> None:
    first = await generate(provider, portrait_prompt(KIT), seed=11)
    again = await generate(OfflineProvider(), portrait_prompt(KIT), seed=11)
    assert first == again
    happy = expression_prompt(KIT, EXPRESSIONS_BY_NAME["happy"])
    assert await edit(provider, happy, first) == await edit(provider, happy, first)
    assert await generate(provider, portrait_prompt(KIT), seed=12) != first


async def test_seed_none_is_derived_from_the_prompt_and_reported(provider: OfflineProvider) -> None:
    a = await provider.generate(GenerateRequest(portrait_prompt(KIT), width=SIZE, height=SIZE))
    b = await provider.generate(GenerateRequest(portrait_prompt(KIT), width=SIZE, height=SIZE))
    assert a.images == b.images and a.seed == b.seed and isinstance(a.seed, int)
    seeded = await generate(provider, portrait_prompt(KIT), seed=a.seed)
    assert seeded == a.images[0]


async def test_result_provenance_and_model_versions() -> None:
    provider = OfflineProvider(model_version="offline-1")
    result = await provider.generate(GenerateRequest("short red hair", width=256, height=256))
    assert (result.provider, result.model, result.model_version) == (
        "offline",
        OFFLINE_MODEL,
        "offline-1",
    )
    assert result.cost_usd == 0.0 and result.prompt_sent == "short red hair"
    assert provider.model_for("generate") == (OFFLINE_MODEL, "offline-1")
    assert provider.model_for("edit", 3) == (OFFLINE_MODEL, "offline-1")
    with pytest.raises(ValueError, match="unknown operation"):
        provider.model_for("upscale")
    assert await provider.latest_model_versions() == {OFFLINE_MODEL: "offline-1"}
    upgraded = OfflineProvider(model_version="offline-2")
    assert await upgraded.latest_model_versions() == {OFFLINE_MODEL: "offline-2"}
    png = (await upgraded.generate(GenerateRequest("x", width=256, height=256))).images[0]
    assert "offline-2" in decode(png).text[IDENTITY_KEY]


async def test_num_images_gives_distinct_consecutive_seeds(provider: OfflineProvider) -> None:
    result = await provider.generate(
        GenerateRequest("a girl", width=256, height=256, num_images=3, seed=40)
    )
    assert len(set(result.images)) == 3
    assert result.extra["seeds_used"] == [40, 41, 42]
    assert result.images[1] == await generate(provider, "a girl", seed=41, width=256, height=256)


# -- generate() honours the prompt and drifts with the seed ----------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_generate_honours_stated_hair_colour(provider: OfflineProvider, seed: int) -> None:
    names = ("red", "black", "blonde", "blue", "silver", "brown", "pink", "green")
    red = await generate(provider, "portrait of a girl with red hair, anime style", seed=seed)
    black = await generate(provider, "portrait of a girl with black hair, anime style", seed=seed)
    assert nearest_name(region_colour(red, "hair"), names) == "red"
    assert nearest_name(region_colour(black, "hair"), names) == "black"


async def test_generate_honours_length_eyes_outfit_and_style(provider: OfflineProvider) -> None:
    prompt = "long pink hair, green eyes, blue hoodie, watercolor, pastel palette"
    identity, state = read_embedded(decode(await generate(provider, prompt, seed=3)))  # type: ignore[misc]
    assert (identity.hair_colour, identity.hair_length, identity.eye_colour) == (
        "pink",
        "long",
        "green",
    )
    assert (identity.outfit_kind, identity.outfit_colour) == ("hoodie", "blue")
    assert (identity.style.medium, identity.style.palette) == ("watercolor", "pastel")
    assert state.framing == "portrait"
    # Length is visible: hair beside the neck for long hair, none for a short bob.
    for seed in (1, 2):
        long_png = await generate(provider, "long black hair, white sweater", seed=seed)
        short_png = await generate(provider, "short black hair, white sweater", seed=seed)
        assert math.dist(region_colour(long_png, "side_hair"), COLOURS["black"]) < 40
        assert math.dist(region_colour(short_png, "side_hair"), COLOURS["black"]) > 60


async def test_two_seeds_drift_while_edits_keep_identity(provider: OfflineProvider) -> None:
    prompt = portrait_prompt(KIT)
    seed_a, seed_b = await generate(provider, prompt, seed=1), await generate(provider, prompt, 2)
    a, b = decode(seed_a), decode(seed_b)
    # Calibrated on this renderer: seed pairs of one prompt give phash 12..28 and a histogram
    # distance of 0.45..0.53; expression edits of one reference stay under 0.06.
    assert phash_distance(a, b) >= 8
    assert histogram_distance(a, b) >= 0.25

    happy = await edit(provider, expression_prompt(KIT, EXPRESSIONS_BY_NAME["happy"]), seed_a)
    sad = await edit(provider, expression_prompt(KIT, EXPRESSIONS_BY_NAME["sad"]), seed_a)
    edited = histogram_distance(decode(happy), decode(sad))
    assert edited <= 0.12
    assert edited * 3 < histogram_distance(a, b)
    # Region by region: hair and cheek stay put under every expression edit, not across seeds.
    region_seed = histogram_distance(
        region_pixels(seed_a, "hair", "face"), region_pixels(seed_b, "hair", "face")
    )
    assert region_seed >= 0.3
    for expression in DEFAULT_EXPRESSIONS:
        out = await edit(provider, expression_prompt(KIT, expression), seed_a)
        region_edit = histogram_distance(
            region_pixels(out, "hair", "face"), region_pixels(seed_a, "hair", "face")
        )
        assert region_edit <= 0.1, expression.name
        for region in ("hair", "face", "outfit"):
            assert math.dist(region_colour(out, region), region_colour(seed_a, region)) < 12
        assert read_embedded(decode(out))[0] == read_embedded(decode(seed_a))[0]  # type: ignore[index]


# -- expressions and poses -------------------------------------------------------------------
def test_renderer_covers_the_default_vocabulary() -> None:
    assert set(EXPRESSION_NAMES) <= set(EXPRESSIONS)
    assert set(POSE_NAMES) <= set(POSES)


async def test_every_expression_and_pose_renders_a_distinct_image(
    provider: OfflineProvider,
) -> None:
    width, height = 384, 320  # not square: the requested size is honoured exactly
    portrait = (
        await provider.generate(
            GenerateRequest(portrait_prompt(KIT), width=width, height=height, seed=3)
        )
    ).images[0]
    faces: dict[str, Image.Image] = {}
    for expression in DEFAULT_EXPRESSIONS:
        result = await provider.edit(
            EditRequest(expression_prompt(KIT, expression), (portrait,), width=width, height=height)
        )
        img = decode(result.images[0])
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (width, height)
        assert read_embedded(img)[1].expression == expression.name  # type: ignore[index]
        faces[expression.name] = img
    for (name_a, a), (name_b, b) in itertools.combinations(faces.items(), 2):
        assert phash_distance(a, b, hash_size=16) > 0, (name_a, name_b)
        assert mean_abs_diff(a, b) > 0.5, (name_a, name_b)

    fullbody = (
        await provider.edit(
            EditRequest(fullbody_prompt(KIT), (portrait,), width=width, height=height)
        )
    ).images[0]
    # The anchors are the sheet's reference views (soft smile; arms relaxed at the sides), and
    # no slot asks for them again: the standing pose puts the hands on the hips.
    assert read_embedded(decode(portrait))[1].expression == "gentle"  # type: ignore[index]
    assert "neutral" not in {read_embedded(decode(portrait))[1].expression}  # type: ignore[index]
    anchor_stance = read_embedded(decode(fullbody))[1]  # type: ignore[index]
    assert (anchor_stance.pose, anchor_stance.framing) == ("standing", "fullbody")
    drawn_as = {"standing": "hands_on_hips"}  # the sheet's standing pose, not the anchor stance
    poses: dict[str, Image.Image] = {}
    for pose in DEFAULT_POSES:
        result = await provider.edit(
            EditRequest(pose_prompt(KIT, pose), (portrait, fullbody), width=width, height=height)
        )
        img = decode(result.images[0])
        state = read_embedded(img)[1]  # type: ignore[index]
        assert (state.pose, state.framing) == (drawn_as.get(pose.name, pose.name), "fullbody")
        assert state.pose != anchor_stance.pose, pose.name
        assert img.size == (width, height)
        poses[pose.name] = img
    for (name_a, a), (name_b, b) in itertools.combinations(poses.items(), 2):
        assert phash_distance(a, b) > 0, (name_a, name_b)
    full = decode(fullbody)
    for name, img in poses.items():
        assert phash_distance(img, full) > 0 and mean_abs_diff(img, full) > 0.5, name
    anchor_face = decode(portrait)
    for name, img in faces.items():
        assert phash_distance(img, anchor_face, hash_size=16) > 0, name
        assert mean_abs_diff(img, anchor_face) > 0.5, name


# -- edit() ----------------------------------------------------------------------------------
@pytest.mark.parametrize("hair", ["pink", "black", "blonde", "teal"])
async def test_identity_from_a_png_without_the_chunk_keeps_the_hair_colour(
    provider: OfflineProvider, hair: str
) -> None:
    original = await generate(provider, f"long {hair} hair, red dress, anime style", seed=4)
    upload = strip_identity(original)
    assert IDENTITY_KEY not in decode(upload).info
    result = await provider.edit(
        EditRequest(
            expression_prompt(KitPrompts("a girl", "anime style"), EXPRESSIONS_BY_NAME["happy"]),
            (upload,),
            width=SIZE,
            height=SIZE,
        )
    )
    assert result.extra["references"][0]["identity"] == "estimated"
    hair_before = region_colour(original, "hair")
    assert math.dist(region_colour(result.images[0], "hair"), hair_before) < 30
    # ... and so does the next edit of that edit (the estimate is now embedded).
    again = await edit(provider, "sad expression", result.images[0])
    assert math.dist(region_colour(again, "hair"), hair_before) < 30


async def test_edit_strength_grows_the_difference_from_the_reference(
    provider: OfflineProvider,
) -> None:
    reference = await generate(provider, portrait_prompt(KIT), seed=8)
    prompt = "the same character, waving pose, full body, happy expression"
    diffs = []
    for strength in (0.0, 0.1, 0.5, 0.9):
        out = await edit(provider, prompt, reference, strength=strength)
        diffs.append(mean_abs_diff(decode(out), decode(reference)))
    assert diffs[0] == 0.0  # 0 = identical
    assert diffs[0] < diffs[1] < diffs[2] < diffs[3]
    low = await provider.edit(EditRequest(prompt, (reference,), edit_strength=0.1, seed=1))
    assert low.extra["edit_strength_mapping"]["mode"] == "touch-up"
    assert read_embedded(decode(low.images[0]))[1].pose == "standing"  # type: ignore[index]


async def test_strong_edits_let_contradicting_appearance_words_override(
    provider: OfflineProvider,
) -> None:
    reference = await generate(provider, "long black hair, blue eyes", seed=2)
    prompt = "the same character, portrait, blonde hair"
    kept = await edit(provider, prompt, reference, strength=0.5)
    changed = await provider.edit(
        EditRequest(prompt, (reference,), edit_strength=0.9, width=SIZE, height=SIZE, seed=5)
    )
    names = ("black", "blonde", "brown")
    assert nearest_name(region_colour(kept, "hair"), names) == "black"
    assert nearest_name(region_colour(changed.images[0], "hair"), names) == "blonde"
    assert "hair_colour" in changed.extra["edit_strength_mapping"]["appearance_overrides"]


async def test_second_reference_contributes_the_outfit(provider: OfflineProvider) -> None:
    portrait = await generate(provider, "short red hair, green cardigan", seed=1)
    outfit_ref = await generate(provider, "long blonde hair, purple kimono", seed=9)
    out = await provider.edit(
        EditRequest(
            "the same character, standing pose, full body",
            (portrait, outfit_ref),
            width=SIZE,
            height=SIZE,
            seed=3,
        )
    )
    identity = read_embedded(decode(out.images[0]))[0]  # type: ignore[index]
    assert (identity.hair_colour, identity.hair_length) == ("red", "short")
    assert (identity.outfit_kind, identity.outfit_colour) == ("kimono", "purple")
    roles = [r["role"] for r in out.extra["references"]]
    assert roles == ["identity", "outfit"]


async def test_edit_rejects_unusable_requests(provider: OfflineProvider) -> None:
    with pytest.raises(InvalidImageRequestError, match="0 reference images"):
        await provider.edit(EditRequest("smile", ()))
    with pytest.raises(InvalidImageRequestError, match=r"reference_images\[1\]"):
        good = await generate(provider, "a girl", width=256, height=256)
        await provider.edit(EditRequest("smile", (good, b"not an image")))
    with pytest.raises(InvalidImageRequestError, match="edit_strength"):
        await provider.edit(EditRequest("smile", (good,), edit_strength=1.5))
    with pytest.raises(InvalidImageRequestError, match="width=8"):
        await provider.generate(GenerateRequest("a girl", width=8))


# -- the prompt parser -----------------------------------------------------------------------
def test_parser_uses_word_boundaries_and_ignores_unknown_words() -> None:
    traits = parse_prompt("an outstanding bored student with sparkling eyes, reddish glow")
    assert traits.pose is None and traits.hair_colour is None and traits.eye_colour is None
    boiler = parse_prompt("the same character, keep the face, hair, eye colour and outfit exactly")
    assert boiler.stated_appearance() == {}
    composed = parse_prompt(pose_prompt(KIT, POSES_BY_NAME["waving"]))
    assert (composed.pose, composed.framing) == ("waving", "fullbody")
    assert (composed.hair_colour.name, composed.hair_length) == ("silver", "long")  # type: ignore[union-attr]
    assert (composed.outfit_kind, composed.outfit_colour.name) == ("cardigan", "green")  # type: ignore[union-attr]
    assert composed.accent_colour.name == "white"  # type: ignore[union-attr]
    assert parse_prompt(expression_prompt(KIT, EXPRESSIONS_BY_NAME["shy"])).framing == "portrait"
    for expression in DEFAULT_EXPRESSIONS:
        assert parse_prompt(expression_prompt(KIT, expression)).expression == expression.name
    # the anchors are the sheet's reference views, which no expression or pose slot repeats
    assert parse_prompt(portrait_prompt(KIT)).expression == "gentle"
    assert parse_prompt("a happy girl with a soft smile").expression == "happy"
    assert parse_prompt("a girl with a bright smile").expression == "happy"
    stance = parse_prompt(fullbody_prompt(KIT))
    assert (stance.pose, stance.framing) == ("standing", "fullbody")
    assert parse_prompt(pose_prompt(KIT, POSES_BY_NAME["standing"])).pose == "hands_on_hips"
    assert parse_prompt("sitting pose, hands on hips").pose == "sitting"
    assert parse_prompt("a red-haired, blue-eyed knight").eye_colour.name == "blue"  # type: ignore[union-attr]
    layered = parse_prompt("wearing a white blouse under a green cardigan")
    assert (layered.outfit_kind, layered.outfit_colour.name) == ("cardigan", "green")  # type: ignore[union-attr]
    assert layered.accent_colour.name == "white"  # type: ignore[union-attr]
    assert parse_prompt("warm smile").palette is None
    assert parse_prompt("warm palette").palette == "warm"


def test_negative_prompt_only_excludes() -> None:
    exclusions = parse_negative("glasses, short hair, blonde hair, different hairstyle")
    assert exclusions.accessories == {"glasses"}
    assert exclusions.hair_lengths == {"short"} and exclusions.hair_colours == {"blonde"}
    for seed in range(30):
        identity = identity_from_prompt(parse_prompt("a girl"), seed, exclusions)
        assert identity.accessory != "glasses"
        assert identity.hair_length != "short" and identity.hair_colour != "blonde"
    # Excluding one trait leaves every other seeded trait of the character as it was.
    plain = identity_from_prompt(parse_prompt("a girl"), 3)
    no_red_eyes = identity_from_prompt(parse_prompt("a girl"), 3, parse_negative("red eyes"))
    assert no_red_eyes.eye_colour != "red"
    differing = {name for name, value in vars(plain).items() if getattr(no_red_eyes, name) != value}
    assert differing <= {"eye_colour", "eye_rgb"}
    # ... and a negative prompt never adds one: "glasses" there never puts glasses on.
    assert parse_negative("glasses").accessories == {"glasses"}
    assert parse_prompt("with glasses").accessories == ["glasses"]
    assert parse_prompt("no glasses, without a ribbon").accessories == []


# -- async behaviour and speed ---------------------------------------------------------------
async def test_concurrent_calls_with_latency_overlap() -> None:
    provider = OfflineProvider(latency_seconds=0.2)
    reference = await generate(OfflineProvider(), "short red hair", width=256, height=256)
    start = time.perf_counter()
    results = await asyncio.gather(
        provider.generate(GenerateRequest("a girl", width=256, height=256, seed=1)),
        provider.generate(GenerateRequest("a boy", width=256, height=256, seed=2)),
        provider.edit(EditRequest("happy expression", (reference,), width=256, height=256)),
        provider.edit(EditRequest("sad expression", (reference,), width=256, height=256)),
    )
    elapsed = time.perf_counter() - start
    assert len(results) == 4 and all(r.images for r in results)
    assert 0.2 <= elapsed < 0.6, elapsed


async def test_a_1024_render_is_fast(provider: OfflineProvider) -> None:
    best = float("inf")
    for seed in range(3):
        start = time.perf_counter()
        await provider.generate(
            GenerateRequest(fullbody_prompt(KIT), width=1024, height=1024, seed=seed)
        )
        best = min(best, time.perf_counter() - start)
    # ~0.12 s measured on a quiet machine (render + PNG encode); generous for shared CI cores.
    assert best < 0.6, best


async def test_prompt_fills_what_an_estimate_cannot_measure(provider: OfflineProvider) -> None:
    upload = strip_identity(await generate(provider, "short pink hair, navy suit", seed=6))
    out = await provider.edit(
        EditRequest(
            "the same character, red kimono, watercolor",
            (upload,),
            edit_strength=0.5,
            width=SIZE,
            height=SIZE,
        )
    )
    identity = read_embedded(decode(out.images[0]))[0]  # type: ignore[index]
    assert (identity.outfit_kind, identity.style.medium) == ("kimono", "watercolor")
    assert identity.hair_colour == "pink"  # measured, and below 0.7 the prompt cannot change it
    assert identity.outfit_colour == "navy"  # measured from the upload's pixels
    assert "outfit_kind" in out.extra["edit_strength_mapping"]["filled_from_prompt"]
