"""``avatar-pipeline consistency pairs|export-decisions``: calibrate the gate on your own art.

``consistency pairs FILE.csv`` scores rows ``anchor,other[,same]`` (paths relative to the CSV)
with the configured embedder and writes CSV to stdout (``anchor,other,identity,verdict`` plus
``same`` and any extra columns); with ``same`` labels it prints ROC AUC, FAR/FRR at the
configured threshold, the equal-error threshold and the threshold that best meets a FAR and an
FRR target at once (``--far-target``/``--frr-target``, default 3 % / 5 %: the rule the shipped
weight-free mark was chosen by) to stderr; with a ``group`` column (e.g. a family of characters,
an artist, a style) also that rule's FAR/FRR leave-one-group-out, each group judged at the mark
the others chose. ``--calibrate OUT`` writes the equal-error threshold (or, with ``--rule
targets``, the target threshold) as a thresholds file (point ``AVATAR_THRESHOLDS_FILE`` at it).

``consistency export-decisions OUT_DIR`` writes the studio's approve/reject history
(``review_decisions``) in the same format: OUT_DIR/pairs.csv and the images it names.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatar_pipeline.settings import Settings


def register(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[Settings, argparse.Namespace], int]]:
    parser = sub.add_parser("consistency", help="evaluate and calibrate the identity gate")
    actions = parser.add_subparsers(dest="consistency_action", required=True)
    pairs = actions.add_parser(
        "pairs", help="score anchor,other[,same] pairs from a CSV (paths relative to it)"
    )
    pairs.add_argument("csv", type=Path, help="CSV with columns anchor,other[,same]")
    pairs.add_argument(
        "--calibrate", type=Path, metavar="OUT", help="write the calibrated threshold to OUT"
    )
    pairs.add_argument(
        "--rule",
        choices=["eer", "targets"],
        default="eer",
        help="what --calibrate writes: the equal-error threshold, or the one best meeting "
        "--far-target and --frr-target at once",
    )
    # defaults (evaluation.FAR_TARGET / FRR_TARGET) are filled in by cmd_pairs: registering the
    # command must not import numpy for every other command
    pairs.add_argument("--far-target", type=_share, help="default 0.03 (issue 8's target)")
    pairs.add_argument("--frr-target", type=_share, help="default 0.05 (issue 8's target)")
    pairs.add_argument(
        "--embedder", choices=["auto", "clip", "perceptual"], help="override AVATAR_EMBEDDER"
    )
    export = actions.add_parser(
        "export-decisions", help="write the studio's accept/reject history as a pairs CSV"
    )
    export.add_argument("out", type=Path, help="folder for pairs.csv and the images")
    export.add_argument("--kit", help="only this kit's decisions")
    return {"consistency": cmd_consistency}


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"a share between 0 and 1 (0.03 = 3 %), got {text}")
    return value


def cmd_consistency(settings: Settings, args: argparse.Namespace) -> int:
    if args.consistency_action == "pairs":
        return cmd_pairs(settings, args)
    return cmd_export_decisions(settings, args)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def cmd_pairs(settings: Settings, args: argparse.Namespace, *, out: Any = None,
              err: Any = None) -> int:  # fmt: skip
    from avatar_pipeline.consistency.embedders import embedder_from_settings, thresholds_for
    from avatar_pipeline.consistency.evaluation import (
        FAR_TARGET,
        FRR_TARGET,
        PairsFileError,
        calibration_payload,
        cross_validated_rates,
        eer_threshold,
        rates_at,
        read_pairs,
        roc_auc,
        score_pairs,
        target_threshold,
    )

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        pairs = read_pairs(args.csv)
    except PairsFileError as exc:
        print(f"error: {exc}", file=err)
        return 2
    if args.calibrate is not None and not any(p.same is not None for p in pairs):
        print("error: --calibrate needs a 'same' column with 1/0 labels", file=err)
        return 2
    if getattr(args, "embedder", None):
        settings = settings.model_copy(update={"embedder": args.embedder})
    embedder = embedder_from_settings(settings)
    thresholds = thresholds_for(embedder.info, thresholds_file=settings.thresholds_file)
    threshold = thresholds.identity_min
    results = score_pairs(embedder, pairs)
    far_t = FAR_TARGET if args.far_target is None else args.far_target
    frr_t = FRR_TARGET if args.frr_target is None else args.frr_target

    extra_cols = list(dict.fromkeys(k for p in pairs for k in p.extra))
    has_labels = any(p.same is not None for p in pairs)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["anchor", "other", "identity", "verdict", *(["same"] if has_labels else []),
                     *extra_cols])  # fmt: skip
    for r in results:
        verdict = "pass" if r.identity >= threshold else "fail"
        label = [] if not has_labels else ["" if r.pair.same is None else int(r.pair.same)]
        writer.writerow([r.pair.anchor, r.pair.other, f"{r.identity:.4f}", verdict, *label,
                         *(r.pair.extra.get(c, "") for c in extra_cols)])  # fmt: skip

    info = embedder.info
    print(f"embedder {info.kind} ({info.model}, weights {info.weights}); identity threshold "
          f"{threshold:.4f}; {len(results)} pairs", file=err)  # fmt: skip
    labelled = [r for r in results if r.pair.same is not None]
    if labelled:
        scores = [r.identity for r in labelled]
        labels = [bool(r.pair.same) for r in labelled]
        auc = roc_auc(scores, labels)
        rates = rates_at(scores, labels, threshold)
        eer = eer_threshold(scores, labels)
        print(f"ROC AUC {'n/a (needs same and different pairs)' if auc is None else f'{auc:.4f}'}",
              file=err)  # fmt: skip
        print(
            f"at threshold {threshold:.4f}: FAR {_pct(rates.far)} ({rates.n_different} "
            f"different pairs), FRR {_pct(rates.frr)} ({rates.n_same} same pairs)",
            file=err,
        )
        if eer is not None:
            print(f"equal-error threshold {eer.threshold:.4f} (FAR {_pct(eer.far)}, FRR "
                  f"{_pct(eer.frr)})", file=err)  # fmt: skip
        target = target_threshold(scores, labels, far_t, frr_t)
        if target is not None:
            print(f"threshold best meeting FAR <= {_pct(far_t)} and FRR <= {_pct(frr_t)}: "
                  f"{target.threshold:.3f} (FAR {_pct(target.far)}, FRR {_pct(target.frr)})",
                  file=err)  # fmt: skip
            groups = [r.pair.extra.get("group", "") for r in labelled]
            if all(groups) and len(set(groups)) >= 2:
                try:
                    pooled, marks = cross_validated_rates(scores, labels, groups, far_t, frr_t)
                except ValueError as exc:
                    print(f"leave-one-group-out: not measured ({exc})", file=err)
                else:
                    print(f"leave-one-group-out ({len(marks)} groups, marks "
                          f"{min(marks.values()):.3f}-{max(marks.values()):.3f}): FAR "
                          f"{_pct(pooled.far)}, FRR {_pct(pooled.frr)} on groups that did not "
                          "choose their mark", file=err)  # fmt: skip
    if args.calibrate is not None:
        payload = calibration_payload(
            info,
            results,
            current_threshold=threshold,
            source=str(args.csv.resolve()),
            rule=args.rule,
            far_target=far_t,
            frr_target=frr_t,
        )
        args.calibrate.parent.mkdir(parents=True, exist_ok=True)
        args.calibrate.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.calibrate}: {info.kind} identity_min "
              f"{payload[info.kind]['identity_min']}; use it with "
              f"AVATAR_THRESHOLDS_FILE={args.calibrate.resolve()}", file=err)  # fmt: skip
    return 0


def cmd_export_decisions(settings: Settings, args: argparse.Namespace, *, err: Any = None) -> int:
    import uuid

    from sqlalchemy import select

    from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, ReviewDecision
    from avatar_pipeline.storage.factory import build_object_store

    err = err or sys.stderr
    upgrade_database(settings.catalog_url)
    factory = make_session_factory(make_engine(settings.catalog_url))
    store = build_object_store(settings)
    out: Path = args.out
    rows: list[dict[str, str]] = []
    skipped = 0
    with session_scope(factory) as session:
        query = (
            select(ReviewDecision, AvatarAsset, AvatarKit)
            .join(AvatarAsset, AvatarAsset.id == ReviewDecision.asset_id)
            .join(AvatarKit, AvatarKit.id == ReviewDecision.avatar_kit_id)
            .where(ReviewDecision.decision.in_(("accepted", "rejected")))
            .order_by(ReviewDecision.decided_at, ReviewDecision.id)
        )
        if args.kit:
            try:
                kit_id = uuid.UUID(args.kit)
            except ValueError:
                print(f"error: {args.kit!r} is not a kit id (see `kits list`)", file=err)
                return 2
            query = query.where(ReviewDecision.avatar_kit_id == kit_id)
        written: set[str] = set()
        for decision, asset, kit in session.execute(query).all():
            anchor = (
                session.get(AvatarAsset, kit.primary_anchor_id) if kit.primary_anchor_id else None
            )
            if anchor is None or anchor.id == asset.id:
                skipped += 1
                continue
            names = []
            for item in (anchor, asset):
                ext = ".jpg" if (item.mime_type or "").endswith("jpeg") else ".png"
                name = f"{kit.id}/{item.id}{ext}"
                if name not in written:
                    data = store.get(item.storage_bucket, item.storage_path)  # type: ignore[arg-type]
                    (out / name).parent.mkdir(parents=True, exist_ok=True)
                    (out / name).write_bytes(data)
                    written.add(name)
                names.append(name)
            rows.append(
                {
                    "anchor": names[0],
                    "other": names[1],
                    "same": "1" if decision.decision == "accepted" else "0",
                    "kind": decision.decision,
                    "kit_id": str(kit.id),
                    "asset_id": str(asset.id),
                    "slot": asset.expression or asset.pose or asset.asset_type,
                    "decided_at": decision.decided_at.isoformat(),
                    "note": decision.note or "",
                }
            )
    out.mkdir(parents=True, exist_ok=True)
    fields = ["anchor", "other", "same", "kind", "kit_id", "asset_id", "slot", "decided_at", "note"]
    with (out / "pairs.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} decisions to {out / 'pairs.csv'}"
          + (f" ({skipped} skipped: kit without a primary anchor, or the anchor itself)"
             if skipped else "")
          + f"; score them with `avatar-pipeline consistency pairs {out / 'pairs.csv'}`",
          file=err)  # fmt: skip
    return 0
