"""The consistency gate through the Dagster kit job, with a provider that misbehaves.

An image provider injected into the kit run returns, for some slots, what a real model might:

(a) ``expression:happy``: another character, drawn on the kit's background;
(b) ``expression:sad`` and the full body: the kit's character on a new background;
(c) ``pose:sitting``: the primary anchor itself, re-encoded and slightly re-framed;
(d) ``expression:angry``: the kit's character with the wrong expression (a crying face).

The images are drawn by the offline renderer (not by the code under test); every other slot is
the offline provider's ordinary edit. With the weight-free (perceptual) embedder, (a) and (c)
are rejected with the reason in words, (b) is promoted (the full body on its own; the
expression, whose adherence nothing could measure, when a person approves the kit), and (d)
is not promoted on its own: adherence is "not measured", a WARN, and the image waits.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from PIL import Image

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.errors import InvalidTransitionError
from avatar_pipeline.domain.prompts import expression_prompt, fullbody_prompt, pose_prompt
from avatar_pipeline.domain.vocab import EXPRESSIONS_BY_NAME, POSES_BY_NAME
from avatar_pipeline.generation.reporting import write_kit_report_for
from avatar_pipeline.imaging.offline import read_embedded, render
from avatar_pipeline.imaging.offline.character import RenderState, identity_from_prompt
from avatar_pipeline.imaging.offline.png_identity import encode_png
from avatar_pipeline.imaging.offline.prompt_parser import parse_prompt
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.types import EditRequest, ProviderResult
from avatar_pipeline_tests.kit_runs import check_verdicts, materialize_kit
from avatar_pipeline_tests.pipeline_fixtures import (
    CountingOfflineImageServiceResource,
    CountingProvider,
    create_kit,
    make_resources,
)

APPEARANCE = "young woman, shoulder-length black hair, warm brown eyes, cream cardigan"
STYLE = "anime style, soft cel shading"
# (a): someone else entirely, drawn on the kit's background
OTHER_CHARACTER = "young man, short spiky blonde hair, green eyes, red hoodie"
NEW_BACKGROUND = (70, 120, 190)


def _slot_prompts() -> dict[str, str]:
    from avatar_pipeline.domain.prompts import KitPrompts

    kit = KitPrompts(APPEARANCE, STYLE, "photorealistic, multiple people")
    prompts = {fullbody_prompt(kit): "anchor_fullbody"}
    for name, definition in EXPRESSIONS_BY_NAME.items():
        prompts[expression_prompt(kit, definition)] = f"expression:{name}"
    for name, definition in POSES_BY_NAME.items():
        prompts[pose_prompt(kit, definition)] = f"pose:{name}"
    return prompts


def _draw(identity: Any, state: RenderState, size: tuple[int, int]) -> bytes:
    return encode_png(render(identity, state, *size), identity, state, "e2e-misbehaving")


def _reframed_jpeg(png: bytes) -> bytes:
    """The anchor as a lazy provider might hand it back: 2 % cropped, resized, through JPEG
    q80 (the service only accepts PNG from a provider, so it arrives as a PNG of that JPEG)."""
    with Image.open(io.BytesIO(png)) as img:
        rgb = img.convert("RGB")
    w, h = rgb.size
    cropped = rgb.crop((round(0.02 * w), round(0.02 * h), w, h)).resize((w, h))
    jpeg = io.BytesIO()
    cropped.save(jpeg, format="JPEG", quality=80)
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg.getvalue())) as decoded:
        decoded.save(out, format="PNG")
    return out.getvalue()


class MisbehavingProvider(CountingProvider):
    """The offline provider, except for the four slots under test."""

    prompts = _slot_prompts()

    async def edit(self, request: EditRequest) -> ProviderResult:
        result = await super().edit(request)
        slot = self.prompts.get(request.prompt)
        with Image.open(io.BytesIO(request.reference_images[0])) as portrait:
            embedded = read_embedded(portrait)
        assert embedded is not None, "the kit's portrait comes from the offline renderer"
        kit_identity, _state = embedded
        size = (request.width, request.height)
        variation = (request.seed or 0) % 9973 + 1
        image: bytes | None = None
        if slot == "expression:happy":  # (a) another character on the kit's background
            other = identity_from_prompt(parse_prompt(OTHER_CHARACTER), 4242)
            other = replace(other, background_rgb=kit_identity.background_rgb)
            image = _draw(other, RenderState(expression="happy", variation=variation), size)
        elif slot in ("expression:sad", "anchor_fullbody"):  # (b) a new background
            moved = replace(kit_identity, background_rgb=NEW_BACKGROUND)
            framing = "fullbody" if slot == "anchor_fullbody" else "portrait"
            state = RenderState(expression="sad" if slot != "anchor_fullbody" else "neutral",
                                framing=framing, variation=variation)  # fmt: skip
            image = _draw(moved, state, size)
        elif slot == "pose:sitting":  # (c) the primary anchor, returned as the pose
            image = _reframed_jpeg(request.reference_images[0])
        elif slot == "expression:angry":  # (d) the wrong expression: a crying face
            state = RenderState(expression="sad", variation=variation * 31 + 7)
            image = _draw(kit_identity, state, size)
        if image is None:
            return result
        return replace(result, images=(image,))


class MisbehavingImageService(CountingOfflineImageServiceResource):
    def build_provider(self) -> ImageProvider:
        return MisbehavingProvider(
            OfflineProvider(latency_seconds=self.latency_seconds, model_version=self.model_version),
            self.tag,
        )


@pytest.fixture
def misbehaving(tmp_path: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    return make_resources(
        tmp_path,
        tag=tag,
        image_service=MisbehavingImageService(
            cache_dir=str(tmp_path / "image_cache"), image_size=384, tag=tag
        ),
    )


def _descriptions(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], str]:
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            out[(data.asset_key.to_user_string(), data.check_name)] = data.description or ""
    return out


def test_the_gate_judges_the_character_not_the_picture(misbehaving, instance, tmp_path: Path):
    resources = misbehaving
    kit_id = create_kit(
        resources, name="Gate E2E", appearance_prompt=APPEARANCE, style_prompt=STYLE
    )
    result = materialize_kit(resources, instance, kit_id)
    verdicts = check_verdicts(result)
    why = _descriptions(result)

    # (a) another character on the kit's background: rejected, and the reason names it
    happy = {n: v for (k, n), v in verdicts.items() if k == "expressions/happy"}
    assert "fail" in (happy["identity"], happy["palette"]), happy
    assert happy["palette"] == "fail" and "ΔE" in why[("expressions/happy", "palette")]
    assert happy["not_a_copy"] == "pass"

    # (c) the primary anchor as a pose: rejected as a copy of the primary anchor
    assert verdicts[("poses/sitting", "not_a_copy")] == "fail"
    assert "a copy of the primary anchor" in why[("poses/sitting", "not_a_copy")]

    # (b) the kit's character on a new background: every measurable check passes
    for key in ("anchor_fullbody", "expressions/sad"):
        for name in ("identity", "not_a_copy", "palette"):
            assert verdicts[(key, name)] == "pass", (key, name, why[(key, name)])
    # (b) and (d): adherence could not be measured — a WARN that says why, never a pass
    for key in ("expressions/sad", "expressions/angry"):
        assert verdicts[(key, "adherence")] == "unmeasured"
        assert "not measured" in why[(key, "adherence")] and "text tower" in why[(key, "adherence")]
    for name in ("identity", "not_a_copy", "palette"):
        assert verdicts[("expressions/angry", name)] == "pass", why[("expressions/angry", name)]

    with resources["catalog"].session() as session:
        rows = {repo.slot_of(a): a for a in repo.list_assets(session, uuid.UUID(kit_id))}
        state = {slot: (a.is_canonical, a.review_state) for slot, a in rows.items()}
    assert state["anchor_fullbody"] == (True, None)  # (b), nothing unmeasured: promoted
    assert state["expression:sad"] == (False, "pending")  # (b), waits for a person
    assert state["expression:angry"] == (False, "pending")  # (d): not promoted on its own
    assert state["expression:happy"] == (False, None)  # (a): rejected
    assert state["pose:sitting"] == (False, None)  # (c): rejected

    # the failed blocking checks stop the run before the report; art ops refresh it alone.
    # It says why, in words, and shows the palette contract and each image's deltas
    consistency = resources["consistency"]
    write_kit_report_for(
        kit_id,
        session_factory=resources["catalog"].session_factory(),
        store=resources["object_store"].get_store(),
        embedder=consistency.get_embedder().info,
        thresholds=consistency.get_thresholds(),
        reports_dir=tmp_path / "reports",
    )
    html = (tmp_path / "reports" / kit_id / "report.html").read_text()
    assert 'id="palette-contract"' in html
    sitting = html.split(f'id="asset-{rows["pose:sitting"].id}"', 1)[1].split('class="card', 1)[0]
    assert "✗ not a copy: fail" in sitting and "a copy of the primary anchor" in sitting
    angry = html.split(f'id="asset-{rows["expression:angry"].id}"', 1)[1].split('class="card', 1)[0]
    assert "○ adherence: not measured" in angry and "waits for a person" in angry
    happy_card = html.split(f'id="asset-{rows["expression:happy"].id}"', 1)[1]
    assert "palette: fail" in happy_card.split('class="card', 1)[0]

    # a person approves the kit: (b) and (d) are promoted with it — but not while the slots
    # of (a) and (c) are empty; approval then refuses, naming them, and changes nothing
    catalog = resources["catalog"]
    with pytest.raises(InvalidTransitionError) as refused, catalog.session() as session:
        repo.approve_kit(session, uuid.UUID(kit_id))
    assert "expression:happy" in str(refused.value) and "pose:sitting" in str(refused.value)
    with resources["catalog"].session() as session:
        kit = repo.get_kit(session, uuid.UUID(kit_id))
        assert kit.status == "draft"
        assert "expression:sad" not in repo.canonical_assets(session, kit.id)
