"""Genre-change delay: seconds from a known change point to ``streamtag.change``, and false changes per hour.

Builds one stream from real clips with known change points: ``--segments`` pieces of
``--min``..``--max`` seconds (seeded), each from a different gtzan-mini track whose genre the model
gets right on the whole track (otherwise the "right" change never comes and that says nothing about
the vote), consecutive pieces of different genres. Runs ``streamtag listen --fast --json`` on it once
per vote mode (the default ``--confirm``, ``--vote-window``, ``--ema-alpha`` unless given) and reports:

* delay: ``t_end`` of the first change event to the new genre after a change point, minus the change
  point (median, p90, and how many changes were never detected before the next change point);
* false changes per hour of audio: change events that are not such a detection.

    nice -n 15 python bench/bench_change_delay.py [--model M] [--segments 60] [--hop 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.modelmeta import default_model_name  # noqa: E402
from streamtag.settings import VOTE_MODES  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
RATE = 22050


def cli(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": "/nonexistent"}
    r = subprocess.run([sys.executable, "-m", "streamtag", *args], capture_output=True, text=True, env=env,
                       cwd=REPO)
    if r.returncode != 0:
        sys.exit(f"streamtag {' '.join(args[:2])} failed: {r.stderr.strip()[-300:]}")
    return r.stdout


def build_stream(dest: Path, model: str, n: int, lo: float, hi: float, seed: int) -> list[tuple[float, str]]:
    """Write the stream; returns ``[(change point s, genre)]`` (the first at 0)."""
    tracks = sorted((SHARED / "data" / "gtzan-mini").glob("*/*.flac"))
    tagged = [json.loads(x) for x in cli("tag", *map(str, tracks), "--json", "--model", model).splitlines()]
    usable = [Path(t["path"]) for t in tagged if t.get("genre") == Path(t["path"]).parent.name]
    rng = random.Random(seed)
    by_genre: dict[str, list[Path]] = {}
    for p in usable:
        by_genre.setdefault(p.parent.name, []).append(p)
    parts, points, t, last = [], [], 0.0, None
    for _ in range(n):
        genre = rng.choice([g for g in by_genre if g != last])
        track = rng.choice(by_genre[genre])
        x, rate = sf.read(track, dtype="float32")
        assert rate == RATE
        length = rng.uniform(lo, hi)
        start = rng.uniform(0, len(x) / rate - length)
        parts.append(x[int(start * rate):int(start * rate) + int(length * rate)])
        points.append((t, genre))
        t += len(parts[-1]) / rate
        last = genre
    sf.write(dest, np.concatenate(parts), RATE)
    print(f"stream: {n} pieces, {t / 60:.1f} min, from {len(usable)} of {len(tracks)} tracks the model tags right",
          flush=True)
    return points


def score(changes: list[dict], points: list[tuple[float, str]], total: float) -> dict:
    delays, detected, missed = [], set(), 0
    for i, (at, genre) in enumerate(points[1:], 1):
        until = points[i + 1][0] if i + 1 < len(points) else total
        hit = next((c for c in changes if at < c["t_end"] <= until + 3 and c["genre"] == genre
                    and id(c) not in detected), None)
        if hit is None:
            missed += 1
            continue
        detected.add(id(hit))
        delays.append(hit["t_end"] - at)
    false = [c for c in changes[1:] if id(c) not in detected]
    return {"changes": len(points) - 1, "detected": len(delays), "missed": missed,
            "delay_median_s": round(float(np.median(delays)), 2) if delays else None,
            "delay_p90_s": round(float(np.percentile(delays, 90)), 2) if delays else None,
            "false_changes": len(false), "false_per_hour": round(len(false) / (total / 3600), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model (default: models/DEFAULT)")
    ap.add_argument("--segments", type=int, default=60)
    ap.add_argument("--min", type=float, default=15.0, help="shortest piece (s)")
    ap.add_argument("--max", type=float, default=25.0, help="longest piece (s)")
    ap.add_argument("--hop", default="1.0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--confirm", default=None)
    args = ap.parse_args()
    model = args.model or default_model_name()
    print(f"model {model}, hop {args.hop} s, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "changes.flac"
        points = build_stream(stream, model, args.segments, args.min, args.max, args.seed)
        total = sf.info(stream).duration
        for mode in VOTE_MODES:
            extra = ["--confirm", args.confirm] if args.confirm else []
            out = cli("listen", "--input", str(stream), "--fast", "--no-tui", "--json", "--no-publish", "--model",
                      model, "--hop", args.hop, "--vote", mode, *extra)
            changes = [e for e in map(json.loads, out.splitlines()) if e["topic"] == "streamtag.change"]
            print(f"RESULT vote={mode} {json.dumps(score(changes, points, total))}", flush=True)


if __name__ == "__main__":
    main()
