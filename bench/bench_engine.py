"""ONNX Runtime session options of the engine, each measured against the engine as it was before issue 12.

Every variant is a fresh process (so its RSS is its own) loading the model through
``streamtag.engine.Engine`` with one :class:`~streamtag.engine.EngineOptions` change, then timing real
audio windows: load time, wall and CPU milliseconds per window at batch 1 (``listen``) and batch 16
(``tag``), and the RSS after runs at random batch sizes 1-32 (what a monitor or ``tag --fast`` sees:
ONNX Runtime's arena keeps the largest batch's memory). The baseline row is the engine before issue 12
(the graph's own STFT kernel, ``session.run``); the ratio column is its batch-16 time over each row's.

    python bench/bench_engine.py [--models fast,fusion] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
CLIP = SHARED / "data" / "gtzan-mini" / "rock" / "rock.00005.flac"

VARIANTS = {
    "before issue 12 (ORT STFT, session.run)": {"lower_stft": False, "io_binding": False},
    "engine default": {},
    "  without IO binding": {"io_binding": False},
    "  1 intra-op thread": {"threads": 1},
    "  2 intra-op threads": {"threads": 2},
    "  optimisation 'extended'": {"optimization": "extended"},
    "  optimisation 'basic'": {"optimization": "basic"},
    "  no CPU memory arena": {"mem_arena": False},
}


def rss_mib() -> float:
    """Resident memory of this process."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(model: str, options: dict, rounds: int) -> dict:
    """Measure one variant in this process; returns the figures."""
    from streamtag.audio import load_mono
    from streamtag.engine import Engine, EngineOptions

    t0 = time.perf_counter()
    engine = Engine(model, "cpu", options=EngineOptions(**options))
    load = time.perf_counter() - t0
    rate, size = engine.meta.sample_rate, engine.meta.window_samples
    x = load_mono(CLIP, rate)
    starts = np.linspace(0, len(x) - size, 32).astype(int)
    windows = np.stack([x[s:s + size] for s in starts]).astype(np.float32)
    out = {"load_s": load, "lowered": engine.lowered}
    for batch, reps in ((1, 3 * rounds), (16, rounds)):
        engine.run(windows, batch)
        walls, cpu0 = [], time.process_time()
        for _ in range(reps):
            t = time.perf_counter()
            engine.run(windows, batch)
            walls.append((time.perf_counter() - t) * 1000 / batch)
        out[f"b{batch}_ms"] = float(np.median(walls))
        out[f"b{batch}_cpu_ms"] = (time.process_time() - cpu0) * 1000 / (reps * batch)
    rng = np.random.default_rng(0)
    for n in rng.integers(1, 33, 40):
        engine.run(windows, int(n))
    out["rss_mib"] = rss_mib()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fast,fusion")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "OPTIONS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]), args.rounds)))
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; CPU provider; ms per 3-s window "
          f"(median), CPU ms per window (all threads), RSS after 40 random batch sizes 1-32")
    head = f"{'variant':42s} {'load s':>6s} {'b1 ms':>6s} {'b1 cpu':>6s} {'b16 ms':>6s} {'b16 cpu':>7s} {'RSS MiB':>7s} {'b16 x':>6s}"
    for model in args.models.split(","):
        print(f"\nmodel {model}")
        print(head)
        base = None
        for label, options in VARIANTS.items():
            r = subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds), "--child", model,
                                json.dumps(options)], capture_output=True, text=True, cwd=REPO)
            if r.returncode != 0:
                print(f"{label:42s} failed: {r.stderr.strip().splitlines()[-1:]}")
                continue
            f = json.loads(r.stdout.splitlines()[-1])
            base = base or f["b16_ms"]
            print(f"{label:42s} {f['load_s']:6.2f} {f['b1_ms']:6.2f} {f['b1_cpu_ms']:6.2f} {f['b16_ms']:6.2f} "
                  f"{f['b16_cpu_ms']:7.2f} {f['rss_mib']:7.0f} {base / f['b16_ms']:5.2f}x")
    print(f"\nload average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
