"""The studio against real Dagster runs (an in-process daemon on a test instance): create a
kit, watch its request to the end, a new take, choose it, and no silent revert of the choice
(approval is in test_studio_pages and the browser test)."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import KitGenerationRequest, ReviewDecision
from avatar_pipeline.resources import ConsistencyResource
from avatar_pipeline.serving.config import Services, build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline_tests.pipeline_fixtures import make_resources
from avatar_pipeline_tests.test_serving.conftest import make_settings
from avatar_pipeline_tests.test_serving.factories import KIT_PROMPTS, Person, make_person
from avatar_pipeline_tests.test_serving.studio_daemon import InProcessDaemon
from avatar_pipeline_tests.test_serving.studio_helpers import (
    browser,
    csrf_of,
    sign_in,
    stable_kit_ids,
)

SLOT = "expression:happy"
WANTED = ("anchor_portrait", "anchor_fullbody", SLOT)


class Studio:
    def __init__(
        self, client: TestClient, services: Services, daemon: InProcessDaemon, admin: Person
    ) -> None:
        self.client, self.services, self.daemon, self.admin = client, services, daemon, admin
        self.csrf = csrf_of(client)

    def post(self, path: str, **data: str) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **data})

    def request(self, request_id: str) -> dict[str, Any]:
        response = self.client.get(f"/studio/requests/{request_id}.json")
        assert response.status_code == 200, response.text
        return response.json()

    def canonical(self, kit_id: str) -> dict[str, str]:
        with session_scope(self.services.session_factory) as session:
            return {s: str(a.id) for s, a in repo.canonical_assets(session, kit_id).items()}


@pytest.fixture
def studio(
    tmp_path: Path, migrated_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Studio]:
    stable_kit_ids(monkeypatch)
    database = tmp_path / "catalog.db"
    shutil.copy(migrated_template, database)
    url = f"sqlite:///{database}"
    settings = make_settings(tmp_path, url)
    services = build_services(settings, migrate=True)
    admin = make_person(settings, services.session_factory, "admin")
    # the pipeline on the same catalog, object store root and reports directory
    resources = make_resources(
        tmp_path,
        url,
        consistency=ConsistencyResource(
            embedder="perceptual",
            embedding_cache_dir=str(tmp_path / "embeddings"),
            reports_dir=str(settings.reports_dir),
        ),
    )
    with dg.instance_for_test() as instance:
        daemon = InProcessDaemon(resources, instance)
        app = create_app(settings, services=services)
        with browser(app) as client:
            sign_in(client, services, admin.email)
            yield Studio(client, services, daemon, admin)
    services.close()


def _request_id(location: str) -> str:
    match = re.search(r"request=([0-9a-f-]{36})", location)
    assert match, location
    return match.group(1)


def _slot_assets(studio: Studio, kit_id: str, slot: str) -> list[Any]:
    with session_scope(studio.services.session_factory) as session:
        return [a for a in repo.list_assets(session, kit_id) if repo.slot_of(a) == slot]


def test_create_watch_take_choose_and_no_silent_revert(studio: Studio) -> None:
    # the studio creates the kit (generate later); the API asks for the slots this test needs
    # (the browser test watches a whole kit)
    created = studio.post(
        "/studio/kits",
        name="Yuki Default",
        new_character="Yuki",
        appearance_prompt=KIT_PROMPTS["appearance_prompt"],
        style_prompt=KIT_PROMPTS["style_prompt"],
        negative_prompt=KIT_PROMPTS["negative_prompt"],
        generate="no",
    )
    assert created.status_code == 303, created.text
    assert "request=" not in created.headers["location"]
    kit_id = created.headers["location"].split("/")[3].split("?")[0]
    asked = studio.client.post(
        f"/avatar-kits/{kit_id}/generate-anchors",
        json={"slots": list(WANTED)},
        headers=studio.admin.headers,
    )
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["id"]
    waiting = studio.request(request_id)
    assert waiting["status"] == "pending" and waiting["total_slots"] == len(WANTED)
    assert {s["state"] for s in waiting["slots"]} == {"waiting"}
    assert "tag%3Aavatar%2Frequest%3D" in waiting["dagster_url"]

    # the daemon picks the request up (one run: the request covers the new kit); the JSON
    # follows it to the end and links the run itself
    assert studio.daemon.tick() == 1
    done = studio.request(request_id)
    assert done["status"] == "done", (done, studio.daemon.errors)
    assert done["finished"] and done["done_slots"] == len(WANTED)
    assert {s["state"] for s in done["slots"]} <= {"canonical", "review"}
    assert done["run_id"] and done["dagster_url"].endswith(f"/runs/{done['run_id']}")
    (original,) = _slot_assets(studio, kit_id, SLOT)
    before = studio.canonical(kit_id)
    assert {"anchor_portrait", "anchor_fullbody"} <= set(before)

    page = studio.client.get(f"/studio/kits/{kit_id}")
    assert page.status_code == 200
    assert page.text.count('class="slot card"') == 14
    assert page.text.count("no canonical image") == 14 - len(before)
    assert "same character" in page.text  # the identity check, in words

    # a new take of one expression: a request for that slot only; a second click is refused
    take = studio.post(f"/studio/kits/{kit_id}/slots/{SLOT}/new-take")
    assert take.status_code == 303, take.text
    take_request = _request_id(take.headers["location"])
    again = studio.post(f"/studio/kits/{kit_id}/slots/{SLOT}/new-take")
    assert again.status_code == 409 and "already on its way" in again.text
    with session_scope(studio.services.session_factory) as session:
        row = session.get(KitGenerationRequest, uuid.UUID(take_request))
        assert row is not None and row.new_take and row.slots == [SLOT]

    assert studio.daemon.tick() == 1
    took = studio.request(take_request)
    assert took["status"] == "done", (took, studio.daemon.errors)
    assert [s["state"] for s in took["slots"]] == ["review"]
    assert studio.canonical(kit_id) == before  # the take waits next to the original
    takes = {
        (a.generation_metadata or {}).get("take", 0): a for a in _slot_assets(studio, kit_id, SLOT)
    }
    assert set(takes) == {0, 1} and takes[0].id == original.id
    assert takes[1].review_state == "pending"
    new_take_id = str(takes[1].id)

    # choose the new take over the original
    chosen = studio.post(f"/studio/kits/{kit_id}/assets/{new_take_id}/accept")
    assert chosen.status_code == 303, chosen.text
    after_choice = studio.canonical(kit_id)
    assert after_choice[SLOT] == new_take_id
    assert {s: a for s, a in after_choice.items() if s != SLOT} == {
        s: a for s, a in before.items() if s != SLOT
    }

    # no silent revert: a later API request to re-generate that expression (which finds the
    # original image again by its fingerprint) keeps the person's choice
    later = studio.client.post(
        f"/avatar-kits/{kit_id}/generate-expressions",
        json={"slots": [SLOT]},
        headers=studio.admin.headers,
    )
    assert later.status_code == 202, later.text
    assert studio.daemon.tick() == 1
    assert studio.request(later.json()["id"])["status"] == "done", studio.daemon.errors
    assert studio.canonical(kit_id)[SLOT] == new_take_id
    assert len(_slot_assets(studio, kit_id, SLOT)) == 2  # nothing paid for twice

    with session_scope(studio.services.session_factory) as session:
        decisions = [
            (d.decision, str(d.asset_id), d.decided_by)
            for d in session.scalars(select(ReviewDecision).order_by(ReviewDecision.decided_at))
        ]
    assert decisions == [("accepted", new_take_id, studio.admin.id)]
