"""avatar_pipeline: consistent character art as a Dagster project (see README.md)."""

import os

# Scoring runs many images at once on worker threads (and several runs at once), so numpy's
# BLAS must not start its own thread per core as well: with one BLAS thread per process a
# 16-kit fleet run used 46 s of CPU instead of 59 s, and finished in 55 s instead of 68 s
# (bench/bench_fleet.py, 2 cores). Set before numpy is imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
