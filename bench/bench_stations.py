"""How many real-time stations one process tags at hop 1 s, with cross-station batching on and off.

Each station is a real gtzan-mini track paced in real time (exactly as ``monitor`` reads a file
station), all in one :class:`~streamtag.pipeline.Pipeline` with one shared model worker. A trial of N
stations runs ``--seconds`` of audio; it *keeps up* when no station's capture backlog
(``backlog_s`` in its status events, sampled every second) stays within ``--max-backlog`` seconds in
90 % of the samples after warm-up (a momentary stall of this shared machine is tolerated, a growing
backlog is not), every station delivers its windows, and no sample is dropped. (File stations never drop: they wait;
a live input -- a device -- starts dropping once its backlog reaches the 20-s ring, so a growing
backlog is the first sign of the same limit.) The largest N that keeps up is found by doubling and
bisection, for batching on (``--batch 32``: windows of all stations that are ready share one model
call) and off (``--batch 1``: one call per window). The ratio on/off is the figure of merit. The CPU
time of the process per station and audio second at that N is printed too, with the station count
it implies for all cores: on a machine shared with other jobs, keeping up in real time measures the
other jobs as much as streamtag, CPU time much less.

    nice -n 15 python bench/bench_stations.py [--model fast] [--seconds 20] [--max 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag import events  # noqa: E402
from streamtag.modelmeta import default_model_name  # noqa: E402
from streamtag.pipeline import Pipeline  # noqa: E402
from streamtag.settings import ListenSettings, MonitorSettings  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))


class Stats:
    """Sink: the worst backlog after warm-up, windows and drops per station."""

    def __init__(self, warmup_s: float):
        self.lock = threading.Lock()
        self.warmup_s = warmup_s
        self.backlogs: list[float] = []
        self.windows: dict[str, int] = {}
        self.dropped = 0
        self.latency_max = 0.0

    def publish(self, topic: str, event: dict) -> None:
        base = events.base_topic(topic)
        with self.lock:
            if base == events.STATUS:
                if event["uptime_s"] > self.warmup_s and not event["final"]:
                    self.backlogs.append(event["backlog_s"])
                self.dropped += event["dropped_samples"] if event["final"] else 0
            elif base == events.GENRE:
                self.windows[event["stream"]] = self.windows.get(event["stream"], 0) + 1
                self.latency_max = max(self.latency_max, event["latency_ms"])

    def close(self) -> None:
        pass


def trial(n: int, batch: int, seconds: float, model: str, tracks: list[Path], max_backlog: float) -> dict:
    stations = [ListenSettings(stream=f"s{i}", input=str(tracks[i % len(tracks)]), duration=seconds)
                for i in range(n)]
    stats = Stats(warmup_s=4.0)
    p = Pipeline(MonitorSettings(model=model, batch=batch, publish="", status_interval=1.0), [stats],
                 stations=stations)
    t0, cpu0 = time.monotonic(), time.process_time()
    p.start()
    p.wait()
    p.stop()
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    expected = int(seconds - 3) + 1
    short = sum(1 for i in range(n) if stats.windows.get(f"s{i}", 0) < expected)
    p90 = float(np.percentile(stats.backlogs, 90)) if stats.backlogs else 0.0
    ok = p.error is None and p90 <= max_backlog and short == 0 and stats.dropped == 0
    return {"n": n, "ok": ok, "backlog_p90_s": round(p90, 2), "backlog_max_s": round(max(stats.backlogs, default=0), 2),
            "short_stations": short, "latency_max_ms": round(stats.latency_max), "wall_s": round(wall, 1),
            "cpu_ms_per_station_second": round(1000 * cpu / (n * seconds), 1)}


def capacity(batch: int, args, tracks: list[Path]) -> tuple[int, list[dict]]:
    """Largest N that keeps up (doubling, then bisection to within 1/8), and every trial."""
    log, good, bad = [], 0, None
    n = args.start
    while bad is None and n <= args.max:
        r = trial(n, batch, args.seconds, args.model, tracks, args.max_backlog)
        log.append(r)
        print(f"  batch {batch:2d}: {r}", flush=True)
        if r["ok"]:
            good, n = n, n * 2
        else:
            bad = n
    while bad is not None and bad - good > max(1, good // 8):
        mid = (good + bad) // 2
        r = trial(mid, batch, args.seconds, args.model, tracks, args.max_backlog)
        log.append(r)
        print(f"  batch {batch:2d}: {r}", flush=True)
        good, bad = (mid, bad) if r["ok"] else (good, mid)
    return good, log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model (default: models/DEFAULT)")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio per trial (default 20)")
    ap.add_argument("--start", type=int, default=4, help="first N tried (default 4)")
    ap.add_argument("--max", type=int, default=512, help="largest N tried (default 512)")
    ap.add_argument("--max-backlog", type=float, default=1.0, help="backlog that counts as falling behind (s)")
    args = ap.parse_args()
    args.model = args.model or default_model_name()
    tracks = sorted((SHARED / "data" / "gtzan-mini").glob("*/*.flac"))
    print(f"model {args.model}, hop 1 s, {args.seconds:g} s per trial, {os.cpu_count()} CPUs, "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    results, cost = {}, {}
    for batch in (32, 1):
        results[batch], log = capacity(batch, args, tracks)
        kept = [r for r in log if r["ok"]]
        cost[batch] = min((r["cpu_ms_per_station_second"] for r in kept if r["n"] == results[batch]), default=None)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    on, off = results[32], results[1]
    print(f"RESULT model={args.model} stations_kept_up batching_on={on} batching_off={off} "
          f"ratio={on / off if off else float('nan'):.2f}")
    # CPU per station is far less sensitive to other jobs than keeping up is: the machine's ceiling from it
    for batch, ms in cost.items():
        if ms:
            print(f"RESULT model={args.model} batch={batch} cpu_ms_per_station_second={ms} "
                  f"stations_per_{os.cpu_count()}_cores_at_full_cpu={int(os.cpu_count() * 1000 / ms)}")


if __name__ == "__main__":
    main()
