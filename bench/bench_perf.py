"""The issue-12 figures in one run: the fast and the default model against what a user would run instead.

For each model (default ``fast`` and ``fusion``):

* ``tag`` on all of gtzan-mini (100 files, 50 min): seconds and x real time, process start included;
* ``listen`` on a file paced in real time (``bench_listen.measure``), at hop 1 s and 0.25 s: event
  latency p50/p99/max after the window's last sample, CPU % of one core, peak RSS, time to the first
  event (3 s of it is the first window filling);
* the seed-style pipeline (``bench_tag.run_seed_style``: librosa + torch, one window at a time) on one
  file per genre, beside ``tag`` on the same files: the speed-up.

Then the musicnn reference implementation (``pip install musicnn``: TensorFlow 1-style graph, librosa
mel) on the same files and windows (3 s, hop 1 s), beside ``tag --model musicnn-zeroshot`` (the same
MSD network) and the default. It needs its own Python with TensorFlow, never a streamtag dependency:
``--musicnn-python PATH`` (or ``$STREAMTAG_MUSICNN_PYTHON``; see the README's Performance section).

    nice -n 0 python bench/bench_perf.py [--models fast,fusion] [--hops 1.0,0.25] [--tracks 2]
        [--musicnn-python /path/to/tf-venv/bin/python]

The load average is printed at the start and the end: absolute figures from a loaded machine are
low; the ratios, measured in the same run, hold better.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_listen import measure  # noqa: E402
from bench_tag import gtzan_files, per_genre, run_seed_style, run_streamtag  # noqa: E402

MUSICNN_REFERENCE = """
import json, sys, time
from musicnn.extractor import extractor
windows, t0 = 0, time.perf_counter()
for path in sys.argv[1:]:
    taggram, _, _ = extractor(path, model="MSD_musicnn", input_length=3, input_overlap=1)
    windows += len(taggram)
print(json.dumps({"seconds": time.perf_counter() - t0, "windows": windows}))
"""
"""Times ``musicnn.extractor.extractor`` (its documented entry point: one call per file) on 3-s windows, hop 1 s
(its ``input_overlap`` is the step between windows, whatever the name says)."""


def musicnn_reference(python: str, files: list[Path]) -> dict | str:
    """Seconds and windows of the musicnn reference over ``files``, or why it could not run."""
    try:
        r = subprocess.run([python, "-c", MUSICNN_REFERENCE, *map(str, files)], capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"})
    except OSError as exc:
        return f"skipped: {python}: {exc.strerror}"
    if r.returncode != 0:
        return f"skipped: the musicnn reference failed ({r.stderr.strip().splitlines()[-1:]})"
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    shared = Path(os.environ.get("STREAMTAG_SHARED", BENCH.parent.parent / "shared"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="fast,fusion")
    ap.add_argument("--hops", default="1.0,0.25", help="listen hops, comma-separated")
    ap.add_argument("--tracks", type=int, default=2, help="30-s tracks played to each listen run")
    ap.add_argument("--data", type=Path, default=shared / "data" / "gtzan-mini")
    ap.add_argument("--musicnn-python", default=os.environ.get("STREAMTAG_MUSICNN_PYTHON"))
    args = ap.parse_args()
    models, hops = args.models.split(","), [float(h) for h in args.hops.split(",")]
    files = gtzan_files(args.data)
    subset = per_genre(files, 1)
    audio_s = sum(sf.info(f).duration for f in files)
    sub_s = sum(sf.info(f).duration for f in subset)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; tag: {len(files)} files, {audio_s:.0f} s; "
          f"comparisons: {len(subset)} files (one per genre), {sub_s:.0f} s; hop 1 s for tag")

    rows = []
    for model in models:
        wall, _ = run_streamtag(files, model, 1.0)
        row = {"model": model, "tag_x": audio_s / wall}
        with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
            for hop in hops:
                row[hop] = measure(model, hop, "file", args.data, args.tracks, Path(tmp) / "clip.wav", quiet=True)
        sub_wall, _ = run_streamtag(subset, model, 1.0)
        base = run_seed_style(subset, model, 1.0)
        row["seed"] = base if isinstance(base, str) else base[0] / sub_wall
        row["sub_wall"] = sub_wall
        rows.append(row)
        print(f"  {model} done (load average {os.getloadavg()[0]:.2f})", flush=True)

    print()
    print(f"{'model':<8} {'tag':>7} | {'hop':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'CPU %':>6} "
          f"{'RSS MiB':>7} {'first s':>7} | vs seed-style")
    for row in rows:
        for i, hop in enumerate(hops):
            f = row[hop]
            head = f"{row['model']:<8} {row['tag_x']:6.0f}x" if i == 0 else " " * 16
            seed = "" if i else (row["seed"] if isinstance(row["seed"], str) else f"{row['seed']:.1f}x faster")
            print(f"{head} | {hop:5.2f} {f['p50_ms']:7.1f} {f['p99_ms']:7.1f} {f['max_ms']:7.1f} {f['cpu_pct']:6.1f} "
                  f"{f['rss_mib']:7.0f} {f['first_event_s']:7.2f} | {seed}")

    if not args.musicnn_python:
        print("\nmusicnn reference: skipped (give --musicnn-python or $STREAMTAG_MUSICNN_PYTHON)")
    else:
        ref = musicnn_reference(args.musicnn_python, subset)
        if isinstance(ref, str):
            print(f"\nmusicnn reference: {ref}")
        else:
            mz, _ = run_streamtag(subset, "musicnn-zeroshot", 1.0)
            print(f"\nmusicnn reference (TensorFlow, one extractor() call per file): {ref['seconds']:.1f} s for "
                  f"{ref['windows']} windows of {len(subset)} files = {sub_s / ref['seconds']:.0f}x real time")
            print(f"streamtag tag --model musicnn-zeroshot (same network, same windows): {mz:.1f} s = "
                  f"{ref['seconds'] / mz:.1f}x faster than the reference")
            for row in rows:
                print(f"streamtag tag --model {row['model']}: {row['sub_wall']:.1f} s = "
                      f"{ref['seconds'] / row['sub_wall']:.1f}x faster than the reference")
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
