"""Studio pages on stored kits: the kit list and its filters, the model sheet (scores in words,
unmeasured shown as not measured, palette), candidate sets, approval rules, archive, the
reports and the offline API docs."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import ReviewDecision
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import KIT_PROMPTS, image_bytes
from avatar_pipeline_tests.test_serving.studio_helpers import browser, csrf_of, sign_in


def _consistency(identity: float, adherence: str = "unmeasured") -> dict[str, Any]:
    verdicts = {
        "identity": {
            "verdict": "pass" if identity >= 0.78 else "fail",
            "why": f"cosine {identity:.3f} vs threshold 0.780",
            "required": True,
        },
        "adherence": {
            "verdict": adherence,
            "why": "the perceptual embedder has no text tower" if adherence == "unmeasured" else "",
            "required": True,
        },
        "not_a_copy": {"verdict": "pass", "why": "pHash distance 18", "required": True},
    }
    status = "fail" if identity < 0.78 else adherence
    return {
        "identity": identity,
        "identity_threshold": 0.78,
        "verdicts": verdicts,
        "status": status,
        "passed": status == "pass",
    }


def _asset(
    api: Api,
    kit_id: uuid.UUID,
    asset_type: str,
    *,
    expression: str | None = None,
    pose: str | None = None,
    canonical: bool = False,
    review_state: str | None = None,
    metadata: dict[str, Any] | None = None,
    colour: tuple[int, int, int] = (200, 120, 80),
) -> uuid.UUID:
    asset_id = uuid.uuid4()
    path = f"{kit_id}/{asset_type}s/{asset_id}.png"
    api.services.object_store.put("avatars", path, image_bytes(color=colour), "image/png")
    with session_scope(api.services.session_factory) as session:
        asset = repo.register_asset(
            session,
            kit_id=kit_id,
            asset_id=asset_id,
            asset_type=asset_type,
            expression=expression,
            pose=pose,
            storage_path=path,
            source_type="ai_generated",
            generation_metadata=metadata or {},
            is_canonical=canonical,
        )
        asset.review_state = review_state
    return asset_id


def _kit(api: Api, name: str = "Yuki Default", character_id: uuid.UUID | None = None) -> uuid.UUID:
    with session_scope(api.services.session_factory) as session:
        return repo.create_kit(
            session, name=name, character_id=character_id or api.character_id, **KIT_PROMPTS
        ).id


def _signed_in(api: Api):  # type: ignore[no-untyped-def]
    client = browser(api.client.app)
    sign_in(client, api.services, api.admin.email)
    return client


def test_kit_list_shows_each_kit_and_filters(api: Api) -> None:
    yuki = _kit(api)
    _asset(
        api,
        yuki,
        "anchor_portrait",
        canonical=True,
        metadata={"consistency": _consistency(1.0, "pass")},
    )
    with session_scope(api.services.session_factory) as session:
        kenji = repo.create_character(session, name="Kenji").id
    other = _kit(api, "Kenji Summer", kenji)
    with session_scope(api.services.session_factory) as session:
        repo.archive_kit(session, other)
    client = _signed_in(api)

    page = client.get("/studio/kits")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "Yuki Default" in page.text and "Kenji Summer" in page.text
    assert "1 / 14 canonical" in page.text
    assert f"/files/avatars/{yuki}/" in page.text  # the portrait thumbnail

    only_kenji = client.get(f"/studio/kits?character={kenji}")
    assert "Kenji Summer" in only_kenji.text and "Yuki Default" not in only_kenji.text
    drafts = client.get("/studio/kits?status=draft")
    assert "Yuki Default" in drafts.text and "Kenji Summer" not in drafts.text
    assert client.get("/studio/kits?status=bogus").status_code == 422


def test_model_sheet_says_why_and_shows_unmeasured_as_not_measured(api: Api) -> None:
    kit_id = _kit(api)
    _asset(
        api,
        kit_id,
        "anchor_portrait",
        canonical=True,
        metadata={"consistency": _consistency(1.0, "pass")},
    )
    _asset(
        api,
        kit_id,
        "expression",
        expression="happy",
        canonical=True,
        metadata={"consistency": _consistency(0.84, "pass")},
    )
    pending = _asset(
        api,
        kit_id,
        "expression",
        expression="happy",
        review_state="pending",
        metadata={"consistency": _consistency(0.83), "take": 1},
    )
    failed = _asset(
        api,
        kit_id,
        "expression",
        expression="sad",
        metadata={"consistency": _consistency(0.61, "pass")},
    )
    with session_scope(api.services.session_factory) as session:
        kit = repo.get_kit(session, kit_id)
        kit.palette_contract = {
            "schema": 1,
            "colours": [
                {"name": "hair", "hex": "#1b1a22", "lab": [0, 0, 0], "share": 0.31},
                {"name": "outfit", "hex": "#c0392b", "lab": [0, 0, 0], "share": 0.22},
                {"name": "bad", "hex": "red;background:url(x)", "share": 0.1},
            ],
        }
    client = _signed_in(api)
    page = client.get(f"/studio/kits/{kit_id}")
    assert page.status_code == 200
    text = page.text
    assert text.count('class="slot card"') == 14
    assert "cosine 0.840 vs threshold 0.780" in text
    assert 'class="check unmeasured" data-check="adherence"' in text
    assert "right expression / pose</strong>: not measured" in text
    assert "same character</strong>: failed" in text  # the sad candidate, in words
    assert f'data-asset="{pending}" data-take="1"' in text
    assert str(failed) in text
    assert 'data-hex="#1b1a22"' in text and 'data-hex="#c0392b"' in text
    assert "url(x)" not in text  # only real hex colours become swatches
    assert "To approve, these still need an image" in text
    assert 'id="approve" disabled' in text


def test_approval_needs_the_required_slots_and_is_recorded(api: Api) -> None:
    kit_id = _kit(api)
    client = _signed_in(api)
    csrf = csrf_of(client)
    refused = client.post(f"/studio/kits/{kit_id}/approve", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "cannot be approved" in refused.text and "Nothing was changed" in refused.text
    with session_scope(api.services.session_factory) as session:
        assert repo.get_kit(session, kit_id).status == "draft"
        assert session.scalars(select(ReviewDecision)).all() == []

    archived = client.post(f"/studio/kits/{kit_id}/archive", data={"csrf_token": csrf})
    assert archived.status_code == 303
    with session_scope(api.services.session_factory) as session:
        assert repo.get_kit(session, kit_id).status == "archived"
        decisions = [d.decision for d in session.scalars(select(ReviewDecision))]
    assert decisions == ["archived_kit"]
    assert (
        client.post(f"/studio/kits/{kit_id}/generate", data={"csrf_token": csrf}).status_code == 409
    )


def test_a_candidate_set_is_shown_beside_the_current_images(api: Api) -> None:
    kit_id = _kit(api)
    _asset(
        api,
        kit_id,
        "anchor_portrait",
        canonical=True,
        metadata={"consistency": _consistency(1.0, "pass")},
    )
    old = _asset(
        api,
        kit_id,
        "expression",
        expression="happy",
        canonical=True,
        metadata={"consistency": _consistency(0.84, "pass")},
    )
    new = _asset(
        api,
        kit_id,
        "expression",
        expression="happy",
        review_state="pending",
        metadata={
            "consistency": _consistency(0.88, "pass"),
            "candidate_set": "prompt-change:ab12cd",
        },
    )
    client = _signed_in(api)
    page = client.get(f"/studio/kits/{kit_id}")
    assert 'data-set="prompt-change:ab12cd"' in page.text
    section = page.text.split('data-set="prompt-change:ab12cd"')[1].split("</section>")[0]
    assert str(old) in section and str(new) in section  # old and new side by side

    rejected = client.post(
        f"/studio/kits/{kit_id}/candidate-sets/prompt-change:ab12cd/reject",
        data={"csrf_token": csrf_of(client)},
    )
    assert rejected.status_code == 303, rejected.text
    with session_scope(api.services.session_factory) as session:
        canonical = repo.canonical_assets(session, kit_id)
        assert canonical["expression:happy"].id == old
        assert repo.get_asset(session, new).review_state == "rejected"
    assert 'data-set="prompt-change:ab12cd"' not in client.get(f"/studio/kits/{kit_id}").text


def test_reports_are_served_to_signed_in_admins(api: Api) -> None:
    kit_id = _kit(api)
    client = _signed_in(api)
    missing = client.get(f"/reports/{kit_id}/report.html")
    assert missing.status_code == 404 and "No report yet" in missing.text
    folder: Path = api.settings.reports_dir / str(kit_id)
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<h1>Yuki Default: active</h1>")
    served = client.get(f"/reports/{kit_id}/report.html")
    assert served.status_code == 200 and "active" in served.text
    assert client.get(f"/reports/{kit_id}/..%2F..%2Fcatalog.db").status_code == 404
    assert browser(api.client.app).get(f"/reports/{kit_id}/report.html").status_code == 401


def test_api_docs_work_offline(api: Api) -> None:
    client = api.client
    for path, asset in (
        ("/docs", "/static/docs/swagger-ui-bundle.js"),
        ("/redoc", "/static/docs/redoc.standalone.js"),
    ):
        page = client.get(path)
        assert page.status_code == 200
        assert asset in page.text
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100_000
    assert client.get("/static/docs/swagger-ui.css").status_code == 200
    assert client.get("/static/studio/studio.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]  # what the pages render


def test_create_kit_requests_generation_and_the_page_can_watch_it(api: Api) -> None:
    client = _signed_in(api)
    csrf = csrf_of(client)
    form = {
        "csrf_token": csrf,
        "name": "Default",
        "character_id": str(api.character_id),
        "appearance_prompt": "young woman, long silver hair, blue eyes, red jacket",
        "style_prompt": "anime style, clean line art",
    }
    created = client.post("/studio/kits", data=form)
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    request_id = location.split("request=")[1]
    status = client.get(f"/studio/requests/{request_id}.json").json()
    assert status["status"] == "pending" and status["total_slots"] == 14
    assert status["dagster_url"].startswith("http://127.0.0.1:3000/runs?")
    page = client.get(location)
    assert f'data-request="{request_id}"' in page.text

    # bad input: a clear message, nothing written
    empty = client.post("/studio/kits", data={**form, "appearance_prompt": "  "})
    assert empty.status_code == 422 and 'id="form-error"' in empty.text
    no_character = client.post("/studio/kits", data={**form, "character_id": ""})
    assert no_character.status_code == 422 and "character" in no_character.text
    with session_scope(api.services.session_factory) as session:
        assert len(repo.list_kits(session)) == 1


def test_prompts_can_be_edited_and_bad_prompts_change_nothing(api: Api) -> None:
    kit_id = _kit(api)
    client = _signed_in(api)
    csrf = csrf_of(client)
    changed = client.post(
        f"/studio/kits/{kit_id}/prompts",
        data={
            "csrf_token": csrf,
            "appearance_prompt": "young woman, short pink hair, green eyes",
            "style_prompt": "watercolour",
        },
    )
    assert changed.status_code == 303
    bad = client.post(
        f"/studio/kits/{kit_id}/prompts",
        data={"csrf_token": csrf, "appearance_prompt": "", "style_prompt": "x"},
    )
    assert bad.status_code == 422
    with session_scope(api.services.session_factory) as session:
        kit = repo.get_kit(session, kit_id)
        assert kit.appearance_prompt == "young woman, short pink hair, green eyes"
        assert kit.style_prompt == "watercolour"


def test_new_take_is_requested_once_per_slot(api: Api) -> None:
    from avatar_pipeline.catalog.models import KitGenerationRequest

    kit_id = _kit(api)
    client = _signed_in(api)
    csrf = csrf_of(client)
    first = client.post(
        f"/studio/kits/{kit_id}/slots/expression:shy/new-take", data={"csrf_token": csrf}
    )
    assert first.status_code == 303
    second = client.post(
        f"/studio/kits/{kit_id}/slots/expression:shy/new-take", data={"csrf_token": csrf}
    )
    assert second.status_code == 409 and "already on its way" in second.text
    other_slot = client.post(
        f"/studio/kits/{kit_id}/slots/pose:sitting/new-take", data={"csrf_token": csrf}
    )
    assert other_slot.status_code == 303
    unknown = client.post(
        f"/studio/kits/{kit_id}/slots/expression:nope/new-take", data={"csrf_token": csrf}
    )
    assert unknown.status_code == 422 and "unknown slot" in unknown.text
    with session_scope(api.services.session_factory) as session:
        rows = session.scalars(
            select(KitGenerationRequest).order_by(KitGenerationRequest.created_at)
        ).all()
        assert [(r.new_take, r.scope, r.slots) for r in rows] == [
            (True, "expressions", ["expression:shy"]),
            (True, "poses", ["pose:sitting"]),
        ]


def test_use_and_reject_a_candidate_are_recorded(api: Api) -> None:
    kit_id = _kit(api)
    _asset(
        api,
        kit_id,
        "anchor_portrait",
        canonical=True,
        metadata={"consistency": _consistency(1.0, "pass")},
    )
    original = _asset(
        api,
        kit_id,
        "expression",
        expression="shy",
        canonical=True,
        metadata={"consistency": _consistency(0.84, "pass")},
    )
    take1 = _asset(
        api,
        kit_id,
        "expression",
        expression="shy",
        review_state="pending",
        metadata={"consistency": _consistency(0.86, "pass"), "take": 1},
    )
    take2 = _asset(
        api,
        kit_id,
        "expression",
        expression="shy",
        review_state="pending",
        metadata={"consistency": _consistency(0.81, "pass"), "take": 2},
    )
    client = _signed_in(api)
    csrf = csrf_of(client)
    used = client.post(f"/studio/kits/{kit_id}/assets/{take1}/accept", data={"csrf_token": csrf})
    assert used.status_code == 303, used.text
    dropped = client.post(f"/studio/kits/{kit_id}/assets/{take2}/reject", data={"csrf_token": csrf})
    assert dropped.status_code == 303, dropped.text
    # the canonical image cannot be rejected without choosing another first
    refused = client.post(f"/studio/kits/{kit_id}/assets/{take1}/reject", data={"csrf_token": csrf})
    assert refused.status_code == 409
    with session_scope(api.services.session_factory) as session:
        assert repo.canonical_assets(session, kit_id)["expression:shy"].id == take1
        assert repo.get_asset(session, take2).review_state == "rejected"
        assert not repo.get_asset(session, original).is_canonical
        decisions = [
            (d.decision, d.asset_id, d.decided_by)
            for d in session.scalars(select(ReviewDecision).order_by(ReviewDecision.decided_at))
        ]
    assert decisions == [("accepted", take1, api.admin.id), ("rejected", take2, api.admin.id)]
    page = client.get(f"/studio/kits/{kit_id}").text
    assert str(take2) not in page  # a rejected take is no longer offered


def test_approval_promotes_waiting_candidates_and_is_recorded(api: Api) -> None:
    from avatar_pipeline.catalog.kit_approval import required_slots_for_approval

    kit_id = _kit(api)
    passed = {"consistency": _consistency(0.9, "pass")}
    waiting = {"consistency": _consistency(0.9)}  # adherence not measured: waits for a person
    _asset(api, kit_id, "anchor_portrait", canonical=True, metadata=passed)
    _asset(api, kit_id, "anchor_fullbody", canonical=True, metadata=passed)
    for slot in required_slots_for_approval()[2:]:
        kind, _, label = slot.partition(":")
        _asset(
            api,
            kit_id,
            kind,
            expression=label if kind == "expression" else None,
            pose=label if kind == "pose" else None,
            review_state="pending",
            metadata=waiting,
        )
    client = _signed_in(api)
    page = client.get(f"/studio/kits/{kit_id}").text
    assert 'id="approve" disabled' not in page and 'id="approve"' in page
    approved = client.post(f"/studio/kits/{kit_id}/approve", data={"csrf_token": csrf_of(client)})
    assert approved.status_code == 303, approved.text
    with session_scope(api.services.session_factory) as session:
        assert repo.get_kit(session, kit_id).status == "active"
        assert set(repo.canonical_assets(session, kit_id)) >= set(required_slots_for_approval())
        decisions = [(d.decision, d.decided_by) for d in session.scalars(select(ReviewDecision))]
    assert decisions == [("approved_kit", api.admin.id)]


def test_approving_a_candidate_set_replaces_the_images_at_once(api: Api) -> None:
    kit_id = _kit(api)
    passed = {"consistency": _consistency(0.9, "pass")}
    _asset(api, kit_id, "anchor_portrait", canonical=True, metadata=passed)
    old = {
        name: _asset(api, kit_id, "expression", expression=name, canonical=True, metadata=passed)
        for name in ("happy", "sad")
    }
    in_set = {**passed, "candidate_set": "model-upgrade:3f2a9c"}
    new = {
        name: _asset(
            api, kit_id, "expression", expression=name, review_state="pending", metadata=in_set
        )
        for name in ("happy", "sad")
    }
    client = _signed_in(api)
    done = client.post(
        f"/studio/kits/{kit_id}/candidate-sets/model-upgrade:3f2a9c/approve",
        data={"csrf_token": csrf_of(client)},
    )
    assert done.status_code == 303, done.text
    with session_scope(api.services.session_factory) as session:
        canonical = repo.canonical_assets(session, kit_id)
        assert {n: canonical[f"expression:{n}"].id for n in new} == new
        assert not any(repo.get_asset(session, a).is_canonical for a in old.values())
        accepted = {d.asset_id for d in session.scalars(select(ReviewDecision))}
    assert accepted == set(new.values())
    missing = client.post(
        f"/studio/kits/{kit_id}/candidate-sets/model-upgrade:3f2a9c/approve",
        data={"csrf_token": csrf_of(client)},
    )
    assert missing.status_code == 404  # nothing left waiting in that set
