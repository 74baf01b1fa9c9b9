"""Per-kit reports (HTML, JSON, contact sheet, markdown) and the fleet summary."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from PIL import Image

from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for
from avatar_pipeline.consistency.palette import extract_palette
from avatar_pipeline.consistency.report import (
    AssetReportInput,
    KitReport,
    KitReportInput,
    build_kit_report,
    fleet_markdown,
    report_markdown,
    write_fleet_summary,
    write_kit_report,
)
from avatar_pipeline.consistency.scores import CandidateInput, score_anchor, score_slots
from avatar_pipeline_tests.test_consistency.drawing import character_png

REQUIRED = ["anchor_portrait", "anchor_fullbody", "expression:happy", "expression:sad"]
SET = ["happy", "sad", "shy"]


def _kit_input(kit_id: str = "kit-1", name: str = "Mickey <b>&</b>") -> KitReportInput:
    embedder = PerceptualEmbedder()
    thresholds = thresholds_for(embedder.info)
    anchor = character_png(1)
    palette = extract_palette(anchor).as_dict()
    candidates = [
        CandidateInput("anchor_fullbody", character_png(1, "sad", size=300), anchor),
        CandidateInput("expression:happy", character_png(1, "happy", size=280), anchor),
        CandidateInput("expression:sad", character_png(90, "sad"), anchor),  # drifted
        # an intended label and no text tower: adherence is not measured, the image waits
        CandidateInput("expression:shy", character_png(1, "happy", size=240), anchor, "shy", SET),
    ]
    scores = score_slots(embedder, anchor=anchor, candidates=candidates, palette_contract=palette)
    assets = [
        AssetReportInput(
            slot="anchor_portrait",
            asset_id="a-portrait",
            storage_path=f"{kit_id}/anchors/portrait_a-portrait.png",
            image=anchor,
            is_canonical=True,
            scores=score_anchor(embedder, anchor=anchor, previous_anchor=None).as_dict(),
            model="offline-procedural",
            model_version="v1",
            cost_usd=0.0,
            seed=1,
        )
    ]
    for index, (candidate, score) in enumerate(zip(candidates, scores, strict=True)):
        assets.append(
            AssetReportInput(
                slot=candidate.slot,
                asset_id=f"a-{index}",
                storage_path=f"{kit_id}/x/{index}.png",
                image=candidate.image,
                is_canonical=score.passed,
                scores=score.as_dict(),
                model="offline-procedural",
                model_version="v1",
                cost_usd=0.03,
                seed=index,
                derived_from_id="a-portrait",
                created_at="2025-06-01T12:00:00+00:00",
                alternatives=[{"asset_id": f"alt-{index}", **score.as_dict()}],
                review_state="pending" if score.status == "unmeasured" else None,
            )
        )
    return KitReportInput(
        kit_id=kit_id,
        name=name,
        status="draft",
        prompts={"appearance_prompt": "red hair", "style_prompt": "anime", "negative_prompt": None},
        embedder=embedder.info,
        thresholds=thresholds,
        assets=assets,
        required_slots=REQUIRED,
        palette_contract=palette,
    )


def test_kit_report_files(tmp_path: Path) -> None:
    kit = _kit_input()
    report = build_kit_report(kit)
    files = write_kit_report(report, tmp_path)
    assert files.html == tmp_path / "kit-1" / "report.html"
    html = files.html.read_text()
    assert len(re.findall(r'src="data:image/jpeg;base64,', html)) == len(kit.assets)
    assert "Mickey &lt;b&gt;&amp;&lt;/b&gt;" in html  # escaped, not injected
    for asset in report.assets:
        assert f'id="asset-{asset.asset_id}"' in html
        if asset.identity is not None:
            assert f"{asset.identity:.3f}" in html
    assert 'href="#asset-a-portrait"' in html  # lineage links to the anchor's card
    assert PerceptualEmbedder.info.model in html
    # the palette contract as swatches, and each image's palette deltas
    contract = html.split('id="palette-contract"', 1)[1].split("</div>\n</div>", 1)[0]
    for colour in kit.palette_contract["colours"]:
        assert colour["hex"] in contract and colour["name"] in contract
    assert html.count('class="deltas palette-deltas"') == 4  # every derived image
    # verdicts in words: a fail says why, an unmeasured check is grey "not measured"
    sad = html.split('id="asset-a-2"', 1)[1].split('class="card', 1)[0]
    assert "✗ identity: fail" in sad and "identity 0." in sad and "palette: fail" in sad
    assert "ΔE" in sad
    shy = html.split('id="asset-a-3"', 1)[1].split('class="card', 1)[0]
    assert 'class="badge unmeasured">NOT MEASURED' in shy and "waits for a person" in shy
    assert '<span class="na">○ adherence: not measured</span>' in shy
    assert "no text tower" in shy

    data = json.loads(files.json.read_text())
    assert data == json.loads(json.dumps(report.to_dict()))
    assert "base64" not in files.json.read_text()
    assert [a["asset_id"] for a in data["assets"]] == [a.asset_id for a in report.assets]
    assert data["embedder"]["kind"] == "perceptual"

    sheet = Image.open(files.contact_sheet_png)
    assert sheet.format == "PNG" and sheet.width >= 5 * 256


def test_summary_and_verdicts() -> None:
    report = build_kit_report(_kit_input())
    by_slot = {a.slot: a for a in report.assets}
    assert [a.slot for a in report.assets][:2] == ["anchor_portrait", "anchor_fullbody"]
    assert by_slot["expression:sad"].verdict == "fail"
    assert by_slot["expression:happy"].verdict == "pass"
    assert by_slot["expression:shy"].verdict == "unmeasured"
    assert by_slot["expression:shy"].verdicts["adherence"]["verdict"] == "unmeasured"
    assert by_slot["expression:sad"].verdicts["palette"]["verdict"] == "fail"
    assert "ΔE" in by_slot["expression:sad"].verdicts["palette"]["why"]
    assert by_slot["anchor_fullbody"].derived_from_slot == "anchor_portrait"
    summary = report.summary
    assert summary.missing_slots == ["expression:sad"]
    assert summary.n_required == len(REQUIRED)
    assert not summary.consistent
    assert any(f.startswith("expression:sad (a-2): identity: fail") for f in summary.failures)
    assert summary.n_pending == 1 and "adherence: not measured" in summary.pending[0]
    canonical = [a.identity for a in report.assets if a.is_canonical and a.identity is not None]
    assert summary.min_identity == min(canonical)
    assert summary.total_cost_usd == 0.12


def test_markdown_has_a_row_per_asset() -> None:
    report = build_kit_report(_kit_input())
    markdown = report_markdown(report)
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| slot | score | threshold")
    assert len(rows) - 1 == len(report.assets)
    sad = next(r for r in rows if r.startswith("| expression:sad"))
    assert "**no**" in sad
    assert "Missing canonical slots: expression:sad" in markdown
    shy = next(r for r in rows if r.startswith("| expression:shy"))
    assert "not measured" in shy
    assert "- expression:shy: identity: pass; adherence: not measured — " in markdown


def test_fleet_summary(tmp_path: Path) -> None:
    reports: list[KitReport] = [
        build_kit_report(_kit_input("kit-a", "Alpha")),
        build_kit_report(_kit_input("kit-b", "Beta")),
    ]
    for report in reports:
        write_kit_report(report, tmp_path)
    index = write_fleet_summary(reports, tmp_path)
    html = index.read_text()
    assert 'href="kit-a/report.html"' in html and 'href="kit-b/report.html"' in html
    fleet = json.loads((tmp_path / "fleet.json").read_text())
    assert {k["kit_id"] for k in fleet["kits"]} == {"kit-a", "kit-b"}
    assert all((tmp_path / k["report"]).is_file() for k in fleet["kits"])
    markdown = fleet_markdown(reports)
    assert markdown.count("\n") == 1 + len(reports)
    assert "Alpha (`kit-a`)" in markdown


def test_assets_without_images_or_scores() -> None:
    kit = _kit_input()
    bare = AssetReportInput(
        slot="pose:waving",
        asset_id="p-1",
        storage_path="kit-1/poses/waving_p-1.png",
        image=None,
        is_canonical=False,
        scores=None,
    )
    broken = AssetReportInput(
        slot="pose:sitting",
        asset_id="p-2",
        storage_path="kit-1/poses/sitting_p-2.png",
        image=b"not an image",
        is_canonical=False,
        scores=None,
    )
    report = build_kit_report(
        KitReportInput(**{**kit.__dict__, "assets": [*kit.assets, bare, broken]})
    )
    by_id = {a.asset_id: a for a in report.assets}
    assert by_id["p-1"].verdict == "unscored" and by_id["p-1"].thumbnail is None
    assert by_id["p-2"].thumbnail is None
    assert Image.open(io.BytesIO(_contact_sheet(report))).size[0] > 0


def _contact_sheet(report: KitReport) -> bytes:
    from avatar_pipeline.consistency.report import render_contact_sheet

    return render_contact_sheet(report)
