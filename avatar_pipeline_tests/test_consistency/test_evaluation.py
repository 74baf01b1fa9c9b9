"""Pairs evaluation (AUC, FAR/FRR, EER), `consistency pairs`, `--calibrate` and the thresholds
file, `consistency export-decisions` against a real catalog."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from avatar_pipeline import cli
from avatar_pipeline.consistency.embedders import PerceptualEmbedder, thresholds_for
from avatar_pipeline.consistency.evaluation import (
    PairsFileError,
    cross_validated_rates,
    eer_threshold,
    rates_at,
    read_pairs,
    roc_auc,
    target_threshold,
)
from avatar_pipeline_tests.eval_art import renderer_b
from avatar_pipeline_tests.eval_art.backgrounds import background
from avatar_pipeline_tests.eval_art.compose import place


def test_auc_equals_the_pairwise_definition() -> None:
    rng = np.random.default_rng(1)
    scores = np.round(rng.random(40), 1)  # many ties
    labels = rng.random(40) < 0.4
    pos, neg = scores[labels], scores[~labels]
    brute = np.mean(
        [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    )
    assert roc_auc(scores, labels) == pytest.approx(brute)
    assert roc_auc([0.9, 0.8], [True, True]) is None


def test_far_frr_and_equal_error_threshold() -> None:
    scores = [0.95, 0.9, 0.85, 0.7, 0.8, 0.6, 0.5, 0.4]
    labels = [True, True, True, True, False, False, False, False]
    r = rates_at(scores, labels, 0.75)
    assert (r.far, r.frr, r.n_same, r.n_different) == (0.25, 0.25, 4, 4)
    eer = eer_threshold(scores, labels)
    assert eer is not None and eer.far == eer.frr == 0.25
    assert 0.7 < eer.threshold <= 0.8 or 0.6 < eer.threshold < 0.7


def test_target_threshold_meets_both_targets_where_it_can() -> None:
    # 20 same pairs 0.80..0.99, 100 different pairs 0.50..0.89 (step 0.004)
    same = [0.80 + 0.01 * i for i in range(20)]
    different = [0.50 + 0.004 * i for i in range(100)]
    scores, labels = same + different, [True] * 20 + [False] * 100
    r = target_threshold(scores, labels, far_target=0.03, frr_target=0.05)
    assert r is not None and r.far is not None and r.frr is not None
    # by hand: at 0.880 FAR 2/100 and FRR 8/20; at 0.810 FRR 1/20 = 5 % but FAR 20 %; the
    # best max(FAR/3 %, FRR/5 %) sits where both ratios cross, and no 0.001 mark does better
    grid = [rates_at(scores, labels, t / 1000) for t in range(400, 1001)]
    best = min(max(g.far / 0.03, g.frr / 0.05) for g in grid)  # type: ignore[operator]
    assert max(r.far / 0.03, r.frr / 0.05) == pytest.approx(best)
    assert round(r.threshold, 3) == r.threshold
    assert target_threshold([0.9, 0.8], [True, True]) is None


def test_cross_validation_judges_each_group_with_the_others_mark() -> None:
    # group "a" is separable at 0.7, group "b" at 0.4: a mark chosen on one misjudges the other
    scores = [0.8, 0.75, 0.6, 0.65, 0.5, 0.45, 0.3, 0.35]
    labels = [True, True, False, False, True, True, False, False]
    groups = ["a", "a", "a", "a", "b", "b", "b", "b"]
    pooled, marks = cross_validated_rates(scores, labels, groups)
    assert set(marks) == {"a", "b"}
    assert marks["a"] <= 0.45 and marks["b"] > 0.65  # each chosen on the other group
    # "a" judged at b's low mark: both different pairs pass; "b" at a's high mark: both same fail
    assert (pooled.far, pooled.frr) == (0.5, 0.5)
    with pytest.raises(ValueError, match="group 'a'"):
        cross_validated_rates([0.8, 0.2], [True, False], ["a", "b"])


def _write(path: Path, char: renderer_b.CharacterB, kind: str, seed: int, **kw: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    place(renderer_b.render_b(char, size=160, **kw), background(kind, seed, 160)).save(path)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    rng = random.Random(5)
    chars = [renderer_b.random_character(rng) for _ in range(4)]
    rows = []
    for i, c in enumerate(chars):
        _write(root / f"c{i}" / "anchor.png", c, "flat", i)
        _write(root / f"c{i}" / "happy.png", c, "stripes", i + 10, expression="happy")
        rows.append((f"c{i}/anchor.png", f"c{i}/happy.png", "1", "same"))
    for i in range(4):
        rows.append((f"c{i}/anchor.png", f"c{(i + 1) % 4}/happy.png", "0", "other"))
    path = root / "pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["anchor", "other", "same", "kind"])
        w.writerows(rows)
    return path


def test_read_pairs_errors(tmp_path: Path, pairs_csv: Path) -> None:
    assert len(read_pairs(pairs_csv)) == 8 and read_pairs(pairs_csv)[0].kind == "same"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    with pytest.raises(PairsFileError, match="anchor,other"):
        read_pairs(bad)
    bad.write_text("anchor,other\nmissing.png,also.png\n")
    with pytest.raises(PairsFileError, match="images not found"):
        read_pairs(bad)
    (tmp_path / "x.png").write_bytes(b"")
    bad.write_text("anchor,other,same\nx.png,x.png,maybe\n")
    with pytest.raises(PairsFileError, match="'same' must be 1/0"):
        read_pairs(bad)


@pytest.fixture
def perceptual_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI on the weight-free embedder and the shipped thresholds, with its own var dir."""
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AVATAR_EMBEDDER", "perceptual")
    monkeypatch.delenv("AVATAR_THRESHOLDS_FILE", raising=False)


@pytest.mark.usefixtures("perceptual_cli")
def test_pairs_command_writes_csv_and_rates(
    pairs_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out_file = tmp_path / "calibrated.json"
    assert cli.main(["consistency", "pairs", str(pairs_csv), "--calibrate", str(out_file)]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 8
    assert set(rows[0]) >= {"anchor", "other", "identity", "verdict", "same", "kind"}
    threshold = thresholds_for(PerceptualEmbedder.info).identity_min
    for row in rows:
        assert row["verdict"] == ("pass" if float(row["identity"]) >= threshold else "fail")
    same = [float(r["identity"]) for r in rows if r["same"] == "1"]
    other = [float(r["identity"]) for r in rows if r["same"] == "0"]
    assert min(same) > max(other)  # four distinct characters: cleanly separated
    assert "ROC AUC 1.0000" in captured.err
    assert (
        "FAR" in captured.err and "FRR" in captured.err and "equal-error threshold" in captured.err
    )
    payload = json.loads(out_file.read_text())
    calibrated = payload["perceptual"]["identity_min"]
    assert max(other) < calibrated <= min(same)
    assert payload["calibration"]["roc_auc"] == 1.0

    # The settings point at the file: every thresholds_for call honours it.
    monkeypatch.setenv("AVATAR_THRESHOLDS_FILE", str(out_file))
    assert thresholds_for(PerceptualEmbedder.info).identity_min == pytest.approx(calibrated)
    assert cli.main(["consistency", "pairs", str(pairs_csv)]) == 0
    assert f"identity threshold {calibrated:.4f}" in capsys.readouterr().err


@pytest.mark.usefixtures("perceptual_cli")
def test_pairs_command_targets_rule_and_groups(
    pairs_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.DictReader(pairs_csv.open()))
    grouped = pairs_csv.parent / "grouped.csv"  # images are relative to the CSV's folder
    with grouped.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["anchor", "other", "same", "group"])
        w.writeheader()
        for r in rows:  # a group per anchor pair: c0/c1 and c2/c3
            group = "g01" if r["anchor"][1] in "01" else "g23"
            w.writerow(
                {"anchor": r["anchor"], "other": r["other"], "same": r["same"], "group": group}
            )
    out_file = tmp_path / "targets.json"
    argv = ["consistency", "pairs", str(grouped), "--calibrate", str(out_file), "--rule",
            "targets", "--far-target", "0.1", "--frr-target", "0.2"]  # fmt: skip
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "threshold best meeting FAR <= 10.0 % and FRR <= 20.0 %" in err
    assert "leave-one-group-out (2 groups" in err
    payload = json.loads(out_file.read_text())
    cal = payload["calibration"]
    assert cal["rule"] == "targets" and (cal["far_target"], cal["frr_target"]) == (0.1, 0.2)
    assert payload["perceptual"]["identity_min"] == pytest.approx(cal["target_threshold"])
    # the written mark meets both targets on these cleanly separated pairs
    assert cal["far_at_target_threshold"] == 0.0 and cal["frr_at_target_threshold"] == 0.0
    with pytest.raises(SystemExit) as exc:  # argparse: usage error, nothing scored
        cli.main(["consistency", "pairs", str(grouped), "--far-target", "3"])
    assert exc.value.code == 2
    assert "a share between 0 and 1" in capsys.readouterr().err


def test_pairs_command_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    assert cli.main(["consistency", "pairs", str(tmp_path / "none.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    unlabelled = tmp_path / "u.csv"
    _write(tmp_path / "a.png", renderer_b.random_character(random.Random(1)), "flat", 1)
    unlabelled.write_text("anchor,other\na.png,a.png\n")
    out = tmp_path / "cal.json"
    assert cli.main(["consistency", "pairs", str(unlabelled), "--calibrate", str(out)]) == 2
    assert "needs a 'same' column" in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_thresholds_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        thresholds_for(PerceptualEmbedder.info, thresholds_file=path)
    with pytest.raises(ValueError, match="does not exist"):
        thresholds_for(PerceptualEmbedder.info, thresholds_file=tmp_path / "nope.json")
    path.write_text(json.dumps({"clip": {"identity_min": 0.9}}))
    # a file for another embedder leaves this one's marks alone
    assert thresholds_for(PerceptualEmbedder.info, thresholds_file=path) == thresholds_for(
        PerceptualEmbedder.info
    )


def test_export_decisions_writes_pairs_and_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from avatar_pipeline.catalog.avatar_kits import create_kit
    from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.catalog.models import AvatarAsset
    from avatar_pipeline.catalog.reviews import record_decision
    from avatar_pipeline.settings import Settings
    from avatar_pipeline.storage.factory import build_object_store

    monkeypatch.setenv("AVATAR_VAR_DIR", str(tmp_path / "var"))
    settings = Settings()
    upgrade_database(settings.catalog_url)
    store = build_object_store(settings)
    factory = make_session_factory(make_engine(settings.catalog_url))
    rng = random.Random(9)
    char, other = renderer_b.random_character(rng), renderer_b.random_character(rng)
    images = {}
    for name, c, kw in (("anchor", char, {}), ("happy", char, {"expression": "happy"}),
                        ("impostor", other, {})):  # fmt: skip
        buf = io.BytesIO()
        place(renderer_b.render_b(c, size=128, **kw), background("flat", 1, 128)).save(buf, "PNG")
        images[name] = buf.getvalue()
    with session_scope(factory, write=True) as session:
        kit = create_kit(session, name="Export", appearance_prompt="a girl", style_prompt="anime")
        assets = {}
        for name, slot in (("anchor", None), ("happy", "happy"), ("impostor", "sad")):
            path = f"avatars/{kit.id}/{name}.png"
            store.put("avatars", path, images[name])
            asset = AvatarAsset(
                avatar_kit_id=kit.id,
                asset_type="anchor_portrait" if slot is None else "expression",
                expression=slot,
                storage_path=path,
                source_type="ai_generated",
                generation_metadata={},
            )
            session.add(asset)
            session.flush()
            assets[name] = asset.id
        kit.primary_anchor_id = assets["anchor"]
        session.flush()
        record_decision(session, kit_id=kit.id, decision="accepted", asset_id=assets["happy"])
        record_decision(session, kit_id=kit.id, decision="rejected", asset_id=assets["impostor"],
                        note="another character")  # fmt: skip
        record_decision(session, kit_id=kit.id, decision="approved_kit")
    out = tmp_path / "export"
    assert cli.main(["consistency", "export-decisions", str(out)]) == 0
    assert "wrote 2 decisions" in capsys.readouterr().err
    rows = list(csv.DictReader((out / "pairs.csv").open()))
    assert [(r["same"], r["kind"], r["slot"]) for r in rows] == [
        ("1", "accepted", "happy"),
        ("0", "rejected", "sad"),
    ]
    assert rows[1]["note"] == "another character"
    assert (out / rows[0]["anchor"]).read_bytes() == images["anchor"]
    assert (out / rows[1]["other"]).read_bytes() == images["impostor"]
    # the export is a pairs file: it scores as is
    assert (
        cli.main(["consistency", "pairs", str(out / "pairs.csv"), "--embedder", "perceptual"]) == 0
    )
    scored = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(scored[0]["identity"]) > float(scored[1]["identity"])
