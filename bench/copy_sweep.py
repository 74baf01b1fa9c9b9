"""The not-a-copy check on a sweep: copies of anchors caught, honest edits not called copies.

Anchors: ``--offline N`` kit portraits drawn by the offline provider (varied hair, eyes,
outfits, styles) and the evaluation set's characters (bench/eval_set: the offline renderer
matted onto other backgrounds and the second, independent renderer). Each anchor's copies are
made with Pillow (exact, brightness and contrast +-5 %, 2 % shift, 2 % crop with and without
rescaling, half size, blur radius 1 and 2, JPEG 80); honest edits are the offline provider's
real expression/pose/full-body edits (as a kit run asks for them, compared with the primary
anchor, every reference and the sibling expressions) and the eval set's other expressions and
poses. Prints a markdown table, with the not-a-copy screen's largest coarse estimate per copy
variant (it must stay far below ``copies.screen_margin()``: a copy estimated over the margin
would not be measured at working size when another target is estimated closer) and how many
honest edits had a target estimated under the margin.

    .venv/bin/python bench/copy_sweep.py [--offline 40] [--honest 40] [--eval 48] [--size 384]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar_pipeline_tests.test_consistency.copy_variants import format_sweep, sweep  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", type=int, default=40, help="offline-provider kit anchors")
    parser.add_argument("--honest", type=int, default=40, help="of which with honest edits")
    parser.add_argument("--eval", type=int, default=48, help="eval-set characters")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()
    started = time.process_time()
    result = sweep(args.offline, args.eval, size=args.size, honest_from=args.honest)
    print(format_sweep(result))
    print(f"cpu {time.process_time() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result.__dict__, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
