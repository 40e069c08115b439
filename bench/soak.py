"""Soak: ``streamtag listen`` on a long file, accelerated and then in real time with forced stalls.

Phase 1 (accelerated): ``--fast`` over ``--accelerated-seconds`` (default 3600) of real music
(gtzan-mini tracks, looped). Phase 2 (real time): the same file paced in real time for
``--realtime-seconds`` (default 600), while the process is frozen with SIGSTOP for
``--stall-seconds`` (default 25: longer than the 20-s capture ring) every ``--stall-every``
seconds (default 100), then resumed with SIGCONT. Each phase reports, from the real CLI's JSON
lines and /proc: windows and their contiguity, the stream time covered by the last window
against the audio fed (every file sample analysed?), ``dropped_samples`` (must be 0 for a file),
schema-invalid or non-strict JSON lines, and RSS (after warm-up, peak, end, growth per hour:
the baseline is the same run's RSS after its first minute, or first quarter when shorter).

    nice -n 15 env OMP_NUM_THREADS=1 python bench/soak.py [--model M] [--hop 1.0]
        [--accelerated-seconds 3600] [--realtime-seconds 600] [--stall-every 100] [--stall-seconds 25]
        [--data ../shared/data/gtzan-mini]

A phase given 0 seconds is skipped. Exit code 1 when a phase dropped file samples, left audio unanalysed, lost or reordered windows,
printed invalid JSON or failed; 0 otherwise. Prints the load average (figures from a loaded
machine say so).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag import events, strictjson  # noqa: E402
from streamtag.audio import load_mono  # noqa: E402
from streamtag.modelmeta import resolve_model  # noqa: E402

RATE = 22050


def build_file(data: Path, seconds: float, dest: Path) -> float:
    """Write ``seconds`` of gtzan-mini music (tracks in order, looped) as 16-bit mono WAV; returns its length."""
    tracks = sorted(data.glob("*/*.flac"))
    if not tracks:
        sys.exit(f"no tracks under {data}")
    need = int(seconds * RATE)
    with sf.SoundFile(dest, "w", RATE, 1, subtype="PCM_16") as out:
        done, i = 0, 0
        while done < need:
            x = load_mono(tracks[i % len(tracks)], RATE)[: need - done]
            out.write(x)
            done += len(x)
            i += 1
    return need / RATE


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Watch:
    """Reads the CLI's JSON lines (strict JSON, schema, seq order) and samples its RSS once a second."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.t0 = proc, time.monotonic()
        self.windows, self.last_t_end, self.final, self.bad_lines, self.seq_errors = 0, 0.0, None, 0, 0
        self.rss: list[tuple[float, float]] = []
        self.final_rss: float | None = None
        try:
            import jsonschema
            schema = events.schema()
            self.validators = {t: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{t}", "$defs": schema["$defs"]})
                               for t in (events.GENRE, events.CHANGE, events.STATUS, events.LEVEL)}
        except ImportError:
            self.validators = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.reader.start()
        self.sampler.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                e = strictjson.loads(line)
                topic = e.pop("topic")
                if self.validators is not None:
                    self.validators[topic].validate(e)
            except Exception:  # noqa: BLE001 - any malformed line counts
                self.bad_lines += 1
                continue
            if topic == events.GENRE:
                if e["seq"] != self.windows:
                    self.seq_errors += 1
                self.windows += 1
                self.last_t_end = e["t_end"]
            elif topic == events.STATUS and e["final"]:
                self.final = e
                self.final_rss = rss_mb(self.proc.pid)  # before the interpreter tears down

    def _sample(self) -> None:
        while self.proc.poll() is None:
            r = rss_mb(self.proc.pid)
            if r is not None:
                self.rss.append((time.monotonic() - self.t0, r))
            time.sleep(1.0)

    def join(self) -> None:
        self.proc.wait()
        self.reader.join()
        self.sampler.join(5)


def run_phase(name: str, argv: list[str], audio_s: float, stalls: tuple[float, float] | None) -> bool:
    """Run one phase; print its figures; True when every check passed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "streamtag", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    w = Watch(proc)
    stalled, rss_at_stalls = 0, []
    if stalls:
        every, length = stalls
        while proc.poll() is None:
            time.sleep(every)
            if proc.poll() is not None:
                break
            rss_at_stalls.append(rss_mb(proc.pid))
            proc.send_signal(signal.SIGSTOP)
            time.sleep(length)
            proc.send_signal(signal.SIGCONT)
            stalled += 1
    w.join()
    wall = time.monotonic() - w.t0
    err = proc.stderr.read().strip()
    f = w.final or {}
    warm = min(60.0, 0.25 * wall)  # baseline: RSS after the first minute (or quarter of a short run)
    t_warm, after_warmup = next(((t, r) for t, r in w.rss if t >= warm), w.rss[0] if w.rss else (0, float("nan")))
    end = w.final_rss if w.final_rss is not None else float("nan")
    peak = max((r for _, r in w.rss), default=float("nan"))
    span_h = max((wall - t_warm) / 3600, 1e-9)
    dropped = f.get("dropped_samples")
    covered = abs(w.last_t_end - audio_s) < 0.01
    print(f"\n== {name}: {' '.join(argv[:1] + argv[-6:])}")
    print(f"audio {audio_s:.0f} s in {wall:.0f} s wall ({audio_s / wall:.1f}x real time), {stalled} forced stalls")
    print(f"windows {w.windows} (final status says {f.get('windows')}), seq errors {w.seq_errors}, "
          f"invalid lines {w.bad_lines}; last window ends at {w.last_t_end:.3f} s of {audio_s:.3f} s")
    print(f"dropped_samples {dropped}, clipped_samples {f.get('clipped_samples')}, latency p50/p99 "
          f"{f.get('latency_p50_ms')}/{f.get('latency_p99_ms')} ms")
    print(f"RSS after warm-up ({t_warm:.0f} s) {after_warmup:.1f} MiB, peak {peak:.1f}, at the final status {end:.1f} "
          f"(ratio end/warm {end / after_warmup:.3f}, growth {(end - after_warmup) / span_h:+.1f} MiB/h)")
    if rss_at_stalls:
        print("RSS before each stall: " + ", ".join(f"{r:.1f}" for r in rss_at_stalls if r is not None) + " MiB")
    print(f"exit code {proc.returncode}; stderr: {err.splitlines()[-1] if err else ''}")
    ok = (proc.returncode == 0 and dropped == 0 and covered and w.seq_errors == 0 and w.bad_lines == 0
          and f.get("windows") == w.windows)
    print(f"{name}: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "gtzan-mini")
    ap.add_argument("--model", default=None)
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--accelerated-seconds", type=float, default=3600)
    ap.add_argument("--realtime-seconds", type=float, default=600)
    ap.add_argument("--stall-every", type=float, default=100)
    ap.add_argument("--stall-seconds", type=float, default=25)
    a = ap.parse_args()
    model = a.model or resolve_model(None)[1].name
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        long_wav = Path(tmp) / "soak.wav"
        seconds = build_file(a.data, max(a.accelerated_seconds, a.realtime_seconds), long_wav)
        common = ["--no-tui", "--json", "--no-publish", "--model", model, "--hop", str(a.hop)]
        ok = a.accelerated_seconds <= 0 or run_phase(
            "accelerated", ["listen", "--input", str(long_wav), "--fast", *common,
                            "--duration", str(a.accelerated_seconds)], min(seconds, a.accelerated_seconds), None)
        ok &= a.realtime_seconds <= 0 or run_phase("real time with SIGSTOP/SIGCONT stalls",
                        ["listen", "--input", str(long_wav), *common, "--duration", str(a.realtime_seconds)],
                        min(seconds, a.realtime_seconds), (a.stall_every, a.stall_seconds))
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
