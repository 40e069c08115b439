"""Where ``streamtag tag`` and ``streamtag listen`` spend their time: py-spy samples, summarised as text.

Runs the real CLI under ``py-spy record`` (native frames included, so time inside ONNX Runtime,
soxr and libsndfile shows as such) and writes, per command, a short text summary -- the functions
with the most samples, by own time and with their callees -- and, with ``--svg``, py-spy's flame
graph. The summaries are small enough to commit (``bench/profiles/``); the SVGs are not meant to be.

    python bench/profile.py [--model fast] [--files 20] [--listen-seconds 20] [--out bench/profiles] [--svg]

Needs ``pip install py-spy`` (the ``bench`` extra) and permission to ptrace (root, or
``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
TOP = 25


def record(cmd: list[str], raw: Path, svg: Path | None, rate: int) -> None:
    """Run ``cmd`` under py-spy, collapsed stacks into ``raw`` (and a flame graph into ``svg``)."""
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy not found: pip install py-spy")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [spy, "record", "--native", "--threads", "--rate", str(rate)]
    subprocess.run([*base, "--format", "raw", "-o", str(raw), "--", *cmd], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if svg is not None:
        subprocess.run([*base, "--format", "flamegraph", "-o", str(svg), "--", *cmd], env=env, cwd=REPO,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (file)`` with the file reduced to its last two path parts and line numbers dropped."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    parts = Path(m["file"]).parts
    return f"{m['func']} ({'/'.join(parts[-2:])})"


def summarise(raw: Path, title: str) -> str:
    """Top functions by own samples and by inclusive samples, per thread group, from collapsed stacks."""
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        head, _, first = frames[0].partition(": ")
        named = first and not first.startswith("0x")
        thread = f"thread: {first.split(' (')[0]}" if named else "native thread (ONNX Runtime pool, PortAudio)"
        frames = [frame_name(f) for f in frames[1:] if f and not f.startswith("0x")]
        total += n
        threads[re.sub(r"-\d+$", "", thread)] += n
        if frames:
            own[frames[-1]] += n
            for f in set(frames):
                incl[f] += n
    lines = [f"# {title}", f"{total} samples", "", "## threads (share of all samples)"]
    lines += [f"{100 * n / total:5.1f} %  {t}" for t, n in threads.most_common(8)]
    lines += ["", f"## top {TOP} by own samples"]
    lines += [f"{100 * n / total:5.1f} %  {f}" for f, n in own.most_common(TOP)]
    lines += ["", f"## top {TOP} by inclusive samples (the function and what it calls)"]
    lines += [f"{100 * n / total:5.1f} %  {f}" for f, n in incl.most_common(TOP)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fast")
    ap.add_argument("--files", type=int, default=20, help="gtzan-mini files for the tag profile")
    ap.add_argument("--listen-seconds", type=float, default=20.0, help="audio played in real time to listen")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "profiles")
    ap.add_argument("--svg", action="store_true", help="also write py-spy flame graphs (large)")
    ap.add_argument("--label", default="", help="suffix for the output names (e.g. before, after)")
    args = ap.parse_args()
    files = sorted((SHARED / "data" / "gtzan-mini").glob("*/*.flac"))[:args.files]
    clip = SHARED / "data" / "gtzan-mini" / "metal" / "metal.00000.flac"
    py = sys.executable
    runs = {
        "tag": [py, "-m", "streamtag", "tag", "--json", "--no-progress", "--model", args.model, *map(str, files)],
        "listen": [py, "-m", "streamtag", "listen", "--no-tui", "--json", "--no-publish", "--model", args.model,
                   "--input", str(clip), "--duration", str(args.listen_seconds)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, cmd in runs.items():
            raw = Path(tmp) / f"{name}.txt"
            svg = args.out / f"{name}-{args.model}{suffix}.svg" if args.svg else None
            record(cmd, raw, svg, args.rate)
            title = f"streamtag {name}, model {args.model}, load average {load:.2f}: {' '.join(cmd[1:6])} ..."
            text = summarise(raw, title)
            (args.out / f"{name}-{args.model}{suffix}.txt").write_text(text)
            print(text)


if __name__ == "__main__":
    main()
