"""CPU cost of the TUI: % of one core used by `streamtag listen` with the TUI (in tmux) vs `--no-tui`.

Both runs play the same real clip in real time (the file is paced like a live input), with the
same model and a ZeroMQ publisher; CPU time (user + system, all threads) is read from
``/proc/<pid>/stat`` over the same stretch of each run, after start-up; runs alternate, and the
machine's load average is printed beside the figures. About 2 minutes with the defaults. Usage::

    python bench/bench_tui.py [--clip PATH] [--warmup 6] [--measure 20] [--repeats 2] [--size 120x40]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED") or REPO.parent / "shared")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def listen_command(clip: Path, tui: bool) -> list[str]:
    exe = shutil.which("streamtag")
    base = [exe] if exe else [sys.executable, "-m", "streamtag"]
    return [*base, "listen", "--input", str(clip), "--model", "audioset-zeroshot",
            "--publish", free_address(), *([] if tui else ["--no-tui"])]


def measure(pid: int, warmup: float, seconds: float) -> float:
    """% of one core used by ``pid`` between ``warmup`` and ``warmup + seconds`` after now."""
    time.sleep(warmup)
    c0, w0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = cpu_seconds(pid), time.monotonic()
    return 100.0 * (c1 - c0) / (w1 - w0)


def run_tui(clip: Path, warmup: float, seconds: float, size: tuple[int, int]) -> float:
    """The TUI in a real terminal (a private tmux server); q ends it."""
    with tempfile.TemporaryDirectory() as tmp:
        pid_file = Path(tmp) / "pid"
        cmd = " ".join(shlex.quote(a) for a in listen_command(clip, tui=True))
        script = f"echo $$ > {shlex.quote(str(pid_file))}; exec {cmd}"
        tmux = ["tmux", "-S", str(Path(tmp) / "tmux.sock")]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run([*tmux, "new-session", "-d", "-s", "bench", "-x", str(size[0]), "-y", str(size[1]),
                        "sh", "-c", script], check=True, env=env)
        try:
            while not pid_file.exists() or not pid_file.read_text().strip():
                time.sleep(0.05)
            pid = int(pid_file.read_text())
            percent = measure(pid, warmup, seconds)
            subprocess.run([*tmux, "send-keys", "-t", "bench", "q"], check=True)
            deadline = time.monotonic() + 15
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
    return percent


def run_console(clip: Path, warmup: float, seconds: float) -> float:
    """``--no-tui``: console lines to a pipe that is drained and dropped."""
    proc = subprocess.Popen(listen_command(clip, tui=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        return measure(proc.pid, warmup, seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=SHARED / "data/gtzan-mini/classical/classical.00000.flac")
    ap.add_argument("--warmup", type=float, default=6.0, help="seconds skipped after start (imports, model load)")
    ap.add_argument("--measure", type=float, default=20.0, help="seconds measured (the clip must last longer)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", default="120x40", help="terminal size for the TUI run")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()
    tui, console = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        tui.append(run_tui(args.clip, args.warmup, args.measure, size))
        console.append(run_console(args.clip, args.warmup, args.measure))
        print(f"run: tui {tui[-1]:.1f}%  no-tui {console[-1]:.1f}%", flush=True)
    t, c = sum(tui) / len(tui), sum(console) / len(console)
    print(f"clip {args.clip.name}, real time, {args.measure:.0f} s measured after {args.warmup:.0f} s, "
          f"{args.repeats} runs each, TUI at {args.size}")
    print(f"CPU % of one core: TUI {t:.1f}  --no-tui {c:.1f}  ratio {t / c:.2f}x  (+{t - c:.1f} points)")
    load_after = os.getloadavg()
    print(f"load average (1/5/15 min) before {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.2f}' for x in load_after)}, on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
