"""Live figures of ``streamtag listen``: event latency, CPU, memory, time to the first event.

Runs the real CLI (``listen --no-tui --json`` publishing on a free local ZeroMQ port) on real
gtzan-mini audio, either

* ``--source file`` (default): a file source paced in real time, or
* ``--source pulse``: capture from the default input device while ``paplay`` plays the clip into
  the default sink -- start a PulseAudio null sink first, as in the README, and export
  ``PULSE_SERVER``.

Reports event latency p50/p99/max (the events' ``latency_ms``: the window's last sample entering
the ring buffer -> publish), CPU % of one core and RSS of the listen process while it tags
(sampled from /proc), and the time from process start to the first event (which cannot be less
than one window of audio).

    nice -n 10 python bench/bench_listen.py [--source file|pulse] [--tracks 2] [--hop 1.0] [--model M]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.modelmeta import resolve_model  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_clip(dest: Path, data: Path, tracks: int) -> float:
    """Concatenate ``tracks`` real tracks of different genres into ``dest``; returns its seconds."""
    genres = ["classical", "metal", "jazz", "hiphop", "country", "reggae", "disco", "pop", "rock", "blues"]
    parts, rate = [], None
    for g in genres[:tracks]:
        x, rate = sf.read(data / g / f"{g}.00000.flac", dtype="float32")
        parts.append(x)
    y = np.concatenate(parts)
    sf.write(dest, y, rate)
    return len(y) / rate


def proc_sample(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used, RSS bytes) of ``pid`` from /proc, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(stat[11]) + int(stat[12])) / TICK, rss_pages * PAGE


def free_port() -> int:
    """A free local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    shared = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", choices=("file", "pulse"), default="file")
    ap.add_argument("--tracks", type=int, default=2, help="30-s tracks to play back to back")
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--model", default="audioset-zeroshot")
    ap.add_argument("--data", type=Path, default=shared / "data" / "gtzan-mini")
    args = ap.parse_args()
    if args.source == "pulse" and not os.environ.get("PULSE_SERVER"):
        sys.exit("--source pulse needs a running PulseAudio server in PULSE_SERVER (see the README)")

    with tempfile.TemporaryDirectory(prefix="bench-listen-") as tmp:
        measure(args.model, args.hop, args.source, args.data, args.tracks, Path(tmp) / "clip.wav")


def measure(model: str, hop: float, source: str, data: Path, tracks: int, clip: Path, quiet: bool = False) -> dict:
    """Play ``tracks`` tracks through ``listen``; print the figures (unless ``quiet``) and return them."""
    seconds = make_clip(clip, data, tracks)
    cmd = [sys.executable, "-m", "streamtag", "listen", "--no-tui", "--json", "--model", model,
           "--hop", str(hop), "--publish", f"tcp://127.0.0.1:{free_port()}"]
    if source == "file":
        cmd += ["--input", str(clip)]
    else:
        cmd += ["--rate", str(sf.info(clip).samplerate), "--channels", "1", "--duration", f"{seconds + 0.5:.1f}"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    samples: list[tuple[float, float, int]] = []

    def sampler() -> None:
        while proc.poll() is None:
            s = proc_sample(proc.pid)
            if s:
                samples.append((time.monotonic(), *s))
            time.sleep(0.25)

    threading.Thread(target=sampler, daemon=True).start()
    banner = proc.stderr.readline()
    t_ready = time.monotonic()
    player = None
    if source == "pulse":
        player = subprocess.Popen(["paplay", str(clip)])
    first = None
    events, times = [], []
    for line in proc.stdout:
        e = json.loads(line)
        now = time.monotonic()
        events.append(e)
        times.append(now)
        if e["topic"] == "streamtag.genre" and first is None:
            first = now
    err = proc.stderr.read()
    proc.wait()
    if player is not None:
        player.wait()
    if proc.returncode != 0:
        sys.exit(f"listen failed ({proc.returncode}): {err.strip()[-400:]}")

    genre = [(t, e) for t, e in zip(times, events) if e["topic"] == "streamtag.genre"]
    lat = np.array([e["latency_ms"] for _, e in genre])
    t_a, t_b = genre[0][0], genre[-1][0]
    steady = [s for s in samples if t_a <= s[0] <= t_b]
    cpu = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]) * 100 if len(steady) > 1 else float("nan")
    rss = max(s[2] for s in samples) / 2**20
    final = events[-1]
    window = resolve_model(model)[1].window_seconds  # audio needed before the first event
    figures = {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
               "max_ms": float(lat.max()), "cpu_pct": cpu, "rss_mib": rss, "ready_s": t_ready - t0,
               "first_event_s": first - t0, "windows": len(genre), "dropped": final["dropped_samples"]}
    if quiet:
        return figures
    print(f"source {source}: {banner.strip()}")
    print(f"audio {seconds:.0f} s, hop {hop} s, {len(genre)} windows, dropped samples "
          f"{final['dropped_samples']}, overflows {final['overflows']}, provider {final['provider']}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"event latency (window end -> publish): p50 {np.percentile(lat, 50):.1f} ms, "
          f"p99 {np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms")
    print(f"CPU while tagging: {cpu:.1f} % of one core; peak RSS {rss:.0f} MiB")
    print(f"start -> ready (model loaded, input open): {t_ready - t0:.2f} s; start -> first event: "
          f"{first - t0:.2f} s (of which {window:.0f} s is the first window filling)")
    print(f"windows per second of wall time: {final['windows_per_s']:.2f}")
    return figures


if __name__ == "__main__":
    main()
