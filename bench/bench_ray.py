"""Files per second of ``streamtag tag --ray`` on a local Ray instance against ``tag`` alone, in one run.

On the same files (default: the 100 gtzan-mini tracks), each a fresh process of the real CLI:
``tag`` (one engine, ``--jobs 1`` decode thread), ``tag --ray --jobs 1`` and ``tag --ray --jobs 2``
(actors, each with its own engine). Ray's start-up (a local instance is started and stopped by each
run) is measured on one file and also taken out: ``steady`` = (N - 1) / (wall(N files) - wall(1 file)).

    nice -n 10 python bench/bench_ray.py [--data ../shared/data/gtzan-mini] [--model audioset-zeroshot]

Prints wall seconds, files/s and steady files/s of each, their ratios to ``tag`` alone, and the load
average. Needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))


def wall(files: list[Path], model: str, extra: list[str]) -> float:
    """Seconds of one CLI run over ``files`` (process start, model load and Ray start-up included)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--json", "--no-progress", "--model", model,
                        *map(str, files), *extra], capture_output=True, text=True, env=env, cwd=REPO)
    if r.returncode != 0 or len(r.stdout.splitlines()) != len(files):
        sys.exit(f"tag {' '.join(extra)} failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data" / "gtzan-mini")
    ap.add_argument("--model", default="audioset-zeroshot")
    args = ap.parse_args()
    files = sorted(args.data.rglob("*.flac")) or sys.exit(f"no .flac files under {args.data}")
    print(f"{len(files)} files from {args.data}; load average before: {os.getloadavg()[0]:.2f}")
    runs = {"tag": [], "tag --ray --jobs 1": ["--ray", "--jobs", "1"], "tag --ray --jobs 2": ["--ray", "--jobs", "2"]}
    rows = {}
    for name, extra in runs.items():
        one = wall(files[:1], args.model, extra)
        full = wall(files, args.model, extra)
        rows[name] = (one, full, len(files) / full, (len(files) - 1) / max(full - one, 1e-6))
    base = rows["tag"]
    print(f"{'run':<22} {'1 file s':>9} {'all s':>8} {'files/s':>8} {'steady files/s':>15} {'vs tag':>7}")
    for name, (one, full, rate, steady) in rows.items():
        print(f"{name:<22} {one:9.1f} {full:8.1f} {rate:8.2f} {steady:15.2f} {steady / base[3]:6.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
