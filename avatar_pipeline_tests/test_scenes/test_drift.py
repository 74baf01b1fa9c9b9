"""Scene drift: scenes drawn by a provider whose upgrade forgets the reference are flagged for
their kit — by the drift view, the kit's report and the Dagster asset check."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import dagster as dg

from avatar_pipeline.assets.scene_drift import CHECK_NAME, scene_drift
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, ProviderResult
from avatar_pipeline.resources import resources_for_environment
from avatar_pipeline.scenes.consistency import scene_embedder
from avatar_pipeline.scenes.drift import kit_drift
from avatar_pipeline.scenes.drift_view import kit_drift_view, render_drift_section
from avatar_pipeline.serving.scene_flow import SceneRequest, generate_scene
from avatar_pipeline_tests.test_scenes.conftest import SceneEnv
from avatar_pipeline_tests.test_scenes.kits import SceneWorld, offline_kit_world, say

PX = 320


class DriftingProvider(OfflineProvider):
    """The offline renderer, whose "upgraded" model ignores its reference image and misreads
    the appearance (another hair, eye and outfit colour): every edit becomes a text-to-image
    render of a character that is no longer the kit's — the drift the spec warns about."""

    MISREAD = {"black hair": "blonde hair", "brown eyes": "blue eyes", "cream": "red"}

    def __init__(self) -> None:
        super().__init__(model_version="offline-1")
        self.drifting = False

    def upgrade(self) -> None:
        self.model_version, self.drifting = "offline-2", True

    async def edit(self, request: EditRequest) -> ProviderResult:
        if not self.drifting:
            return await super().edit(request)
        prompt = request.prompt
        for said, drawn in self.MISREAD.items():
            prompt = prompt.replace(said, drawn)
        seed = (request.seed or 0) + 7919
        return await super().generate(
            GenerateRequest(prompt, request.negative_prompt, request.width, request.height, 1, seed)
        )


def draw_scenes(env: SceneEnv, world: SceneWorld, service: ImageService, seeds: range) -> None:
    async def run() -> None:
        for seed in seeds:
            await generate_scene(
                SceneRequest(world.user_id, world.episode_id, width=PX, height=PX, seed=seed),
                session_factory=env.factory,
                store=env.store,
                image_service=service,
                url_ttl_seconds=60,
                embedder=scene_embedder(env.settings),
            )

    asyncio.run(run())


def test_scenes_of_a_drifting_provider_are_flagged_for_their_kit(env: SceneEnv) -> None:
    world = offline_kit_world(env.factory, env.store)
    say(
        env.factory,
        world,
        ("user", "Tea at the cafe?"),
        ("assistant", "*smiles* I'd love that, I'm so happy!"),
    )
    provider = DriftingProvider()
    service = ImageService(provider)

    draw_scenes(env, world, service, range(1, 5))
    with session_scope(env.factory) as session:
        before = kit_drift(session, world.kit_id, window=4, min_scenes=3)
    assert before.status == "ok", before.reason
    assert all(p.verdict == "pass" for p in before.points)

    provider.upgrade()
    draw_scenes(env, world, service, range(5, 9))
    with session_scope(env.factory) as session:
        after = kit_drift(session, world.kit_id, window=4, min_scenes=3)
    assert after.status == "drifting", after.reason
    assert after.recent_median is not None and after.threshold is not None
    assert after.recent_median < after.threshold <= before.recent_median  # type: ignore[operator]
    assert [v.model_version for v in after.versions] == ["offline-1", "offline-2"]
    assert after.versions[1].median < after.versions[0].median
    assert {p.scene_id for p in after.worst} <= {p.scene_id for p in after.points[4:]}

    # the studio's data and partial
    view = kit_drift_view(env.factory, env.store, world.kit_id, window=4, min_scenes=3)
    assert view["status"] == "drifting" and len(view["points"]) == 8
    assert all(p["thumbnail"].startswith("data:image/jpeg;base64,") for p in view["worst"])
    html = render_drift_section(view)
    assert "DRIFTING" in html and html.count("<circle") == 8 and "offline-2" in html

    # the Dagster asset and its check, with the environment's own resources
    resources = resources_for_environment(env.settings)
    result = dg.materialize(
        [scene_drift],
        resources=resources,
        run_config={"ops": {"scene_drift": {"config": {"window": 4, "min_scenes": 3}}}},
        raise_on_error=False,
    )
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == CHECK_NAME and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    flagged = check.metadata["drifting_kits"].value
    assert [k["id"] for k in flagged] == [str(world.kit_id)]
    assert (Path(env.settings.reports_dir) / "scene_drift.html").read_text().count("DRIFTING") == 1


def test_too_few_scenes_is_not_measured_and_never_a_pass(env: SceneEnv) -> None:
    world = offline_kit_world(env.factory, env.store)
    say(env.factory, world, ("assistant", "Good morning!"))
    draw_scenes(env, world, ImageService(OfflineProvider()), range(1, 3))
    with session_scope(env.factory) as session:
        drift = kit_drift(session, world.kit_id, window=20, min_scenes=3)
    assert drift.status == "unmeasured" and "2 scored scene(s)" in drift.reason
    result = dg.materialize(
        [scene_drift], resources=resources_for_environment(env.settings), raise_on_error=False
    )
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "not measured" in (check.description or "")


def test_the_kit_report_carries_the_drift_section(env: SceneEnv) -> None:
    from avatar_pipeline.consistency.embedders.thresholds import thresholds_for
    from avatar_pipeline.generation.reporting import write_kit_report_for

    world = offline_kit_world(env.factory, env.store)
    say(env.factory, world, ("assistant", "*reads a book in the library* So curious! 🤔"))
    draw_scenes(env, world, ImageService(OfflineProvider()), range(1, 4))
    embedder = scene_embedder(env.settings)
    result = write_kit_report_for(
        str(world.kit_id),
        session_factory=env.factory,
        store=env.store,
        embedder=embedder.info,
        thresholds=thresholds_for(embedder.info),
        reports_dir=env.settings.reports_dir,
    )
    html = result.files.html.read_text()
    assert html.count('id="scene-drift"') == 1 and "Worst scenes" in html
    data = json.loads(result.files.json.read_text())
    assert data["scene_drift"]["status"] == "ok" and len(data["scene_drift"]["points"]) == 3
    # a second report replaces the section instead of adding another
    write_kit_report_for(
        str(world.kit_id), session_factory=env.factory, store=env.store, embedder=embedder.info,
        thresholds=thresholds_for(embedder.info), reports_dir=env.settings.reports_dir,
    )  # fmt: skip
    assert result.files.html.read_text().count('id="scene-drift"') == 1


def test_a_provider_upgrade_on_replicate_that_ignores_references_is_flagged(
    env: SceneEnv, tmp_path: Path
) -> None:
    """A second, different image generator: the fake Replicate server's Kontext, whose new
    version (``bump_version(unfaithful=True)``) stops following the reference image."""
    from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
    from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer

    world = offline_kit_world(env.factory, env.store)
    say(env.factory, world, ("assistant", "*sips tea in the garden* So peaceful 😌"))
    with FakeReplicateServer(processing_s=0.01, megapixels=0.25) as fake:
        provider = ReplicateProvider(
            api_token=fake.token, base_url=fake.base_url, poll_interval_s=0.02, timeout_s=10
        )
        service = ImageService(provider)
        draw_scenes(env, world, service, range(1, 4))
        fake.bump_version("black-forest-labs/flux-kontext-pro", unfaithful=True)
        draw_scenes(env, world, service, range(4, 7))
    with session_scope(env.factory) as session:
        drift = kit_drift(session, world.kit_id, window=3, min_scenes=3)
        earlier = kit_drift(session, world.kit_id, window=6, min_scenes=3)
    assert drift.status == "drifting", drift.reason
    assert [p.verdict for p in drift.points] == ["pass"] * 3 + ["fail"] * 3
    assert earlier.points[0].model == "black-forest-labs/flux-kontext-pro"
    # NB: the version recorded stays the one looked up first (official models answer
    # "hidden"; the service looks versions up once per process): see the scenes notes.
