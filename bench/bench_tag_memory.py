"""Peak memory of ``streamtag tag`` on one long file: the streaming decoder against the old whole-file path.

Makes a long FLAC (default 2 hours: gtzan-mini tracks end to end, written block by block), then in
one run measures, each in its own process (peak RSS from ``wait4``):
- streaming: the real CLI, ``python -m streamtag tag FILE --json`` (decode, resample and window block by
  block; memory bounded whatever the length);
- whole-file baseline, the former ``tag`` path: the same engine, but the file decoded and resampled
  whole (``streamtag.audio.load_mono``) before its windows are cut and batched.

    nice -n 10 python bench/bench_tag_memory.py [--hours 2] [--model audioset-zeroshot] [--keep PATH]

Prints peak RSS, wall seconds (x real time) and CPU seconds of each, the RSS ratio, and the load
average (wall time follows the load; CPU seconds much less).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.settings import TagSettings  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))

WHOLE_FILE = """
import sys, numpy as np
from streamtag.audio import load_mono
from streamtag.engine import Engine
engine = Engine(sys.argv[2])
meta = engine.meta
x = load_mono(sys.argv[1], meta.sample_rate)
size, hop = meta.window_samples, meta.sample_rate
starts = range(0, len(x) - size + 1, hop)
n = int(sys.argv[3])
batch = np.zeros((n, size), dtype=np.float32)
for i in range(0, len(starts), n):
    chunk = starts[i:i + n]
    for j, s in enumerate(chunk):
        batch[j] = x[s:s + size]
    engine.run(batch[:len(chunk)])
"""
"""The whole-file path: decode + resample everything, then windows (hop 1 s) in batches of ``tag``'s size."""


def make_long_file(path: Path, hours: float) -> float:
    """Write ``hours`` of gtzan-mini audio (22 050 Hz mono FLAC) block by block; returns its seconds."""
    tracks = sorted((SHARED / "data" / "gtzan-mini").glob("*/*.flac"))
    if not tracks:
        sys.exit(f"no gtzan-mini tracks under {SHARED} (set STREAMTAG_SHARED)")
    want, done = int(hours * 3600 * 22050), 0
    with sf.SoundFile(path, "w", samplerate=22050, channels=1, format="FLAC", subtype="PCM_16") as out:
        while done < want:
            for t in tracks:
                x, _ = sf.read(t, dtype="int16")
                x = x[:want - done]
                out.write(x)
                done += len(x)
                if done >= want:
                    break
    return done / 22050


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """(peak RSS in MiB, wall seconds, CPU seconds) of one child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[:4]} failed: {err.strip()[-500:]}")
    return usage.ru_maxrss / 1024, wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--model", default="audioset-zeroshot")
    ap.add_argument("--keep", type=Path, help="make (or reuse) the long file here instead of a temporary one")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "long.flac"
        if path.is_file():
            seconds = sf.info(str(path)).duration
        else:
            t0 = time.perf_counter()
            seconds = make_long_file(path, args.hours)
            print(f"made {path} ({seconds / 3600:.2f} h, {path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - t0:.0f} s")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        rss_s, wall_s, cpu_s = measure([sys.executable, "-m", "streamtag", "tag", str(path), "--json",
                                        "--model", args.model])
        print(f"streaming (streamtag tag):      peak RSS {rss_s:7.0f} MiB, {wall_s:6.1f} s wall "
              f"({seconds / wall_s:4.0f}x real time), {cpu_s:6.1f} s CPU")
        rss_w, wall_w, cpu_w = measure([sys.executable, "-c", WHOLE_FILE, str(path), args.model, str(TagSettings.batch)])
        print(f"whole file (former tag path):   peak RSS {rss_w:7.0f} MiB, {wall_w:6.1f} s wall "
              f"({seconds / wall_w:4.0f}x real time), {cpu_w:6.1f} s CPU")
        print(f"peak RSS ratio whole/streaming: {rss_w / rss_s:.1f}x; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
