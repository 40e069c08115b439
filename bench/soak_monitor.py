"""Soak of ``streamtag monitor`` on a network stream: 1 h accelerated, then real time with forced reconnects.

A local HTTP server (in this script) serves one MP3 made from real clips (gtzan-mini, then extra-4q,
up to ``--hours`` of audio; encoded once by the ``ffmpeg`` binary):

* phase A -- ``/file``: the whole stream as fast as the monitor reads it (``--fast``), one station;
* phase B -- ``/live``: the same bytes paced in real time and looped, the connection cut by the server
  every ``--reconnect-every`` s (a forced reconnect), for ``--minutes``; the monitor publishes on
  ZeroMQ and a deliberately slow subscriber (one message per 2 s) is connected all along.

Reported per phase: dropped samples (final status), outages, windows vs audio seconds, the largest
capture backlog after the first minute (queue growth), RSS of the monitor process over the first vs
the last 10 % of the run from its first window on (sampled from /proc each second), latency p99
(phase B), and what the slow subscriber got. Run it in the background:

    nice -n 15 python bench/soak_monitor.py [--hours 1] [--minutes 10] [--reconnect-every 120] [--model M]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import zmq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.audio import load_mono  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def build_mp3(dest: Path, hours: float) -> float:
    """Real clips (gtzan-mini, then extra-4q, repeated if needed) up to ``hours``, mono 22050 Hz, as a
    64 kbps MP3 (decoded and resampled here, encoded by the ffmpeg binary); returns its seconds."""
    tracks = sorted((SHARED / "data" / "gtzan-mini").glob("*/*.flac")) + sorted(
        (SHARED / "data" / "extra-4q").glob("*/*.mp3"))
    wav = dest.with_suffix(".wav")
    total, i = 0, 0
    with sf.SoundFile(wav, "w", samplerate=22050, channels=1, subtype="PCM_16") as out:
        while total < hours * 3600 * 22050:
            x = load_mono(tracks[i % len(tracks)], 22050)
            out.write(x)
            total += len(x)
            i += 1
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav),
                    "-c:a", "libmp3lame", "-b:a", "64k", str(dest)], check=True)
    wav.unlink()
    return total / 22050


def serve(mp3: bytes, seconds: float, reconnect_every: float) -> tuple[socketserver.TCPServer, str]:
    rate = len(mp3) / seconds  # bytes per second of audio
    pos = {"live": 0}

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            path = self.rfile.readline().split()[1].decode()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            try:
                if path == "/file":
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: %d\r\n\r\n"
                                     % len(mp3) + mp3)
                    return
                self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
                t0, sent, chunk = time.monotonic(), 0, int(rate * 0.1)
                while time.monotonic() - t0 < reconnect_every:
                    p = pos["live"] % len(mp3)
                    self.wfile.write(mp3[p:p + chunk])
                    pos["live"] += chunk
                    sent += chunk
                    time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def rss(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError):
        return None


def run_monitor(url: str, model: str, extra: list[str], minutes: float | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stations = Path(tmp) / "s.toml"
        stations.write_text(f'[[station]]\nname = "soak"\ninput = "{url}"\n')
        env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": "/nonexistent"}
        proc = subprocess.Popen([sys.executable, "-m", "streamtag", "monitor", str(stations), "--no-tui", "--model",
                                 model, "--status-interval", "5", *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        statuses, outages, windows = [], [], [0]

        def read():  # RSS is compared from the first window on (model loaded, stream open)
            for line in proc.stdout:
                e = json.loads(line)
                if e["topic"].startswith("streamtag.status"):
                    statuses.append(e)
                elif e["topic"].startswith("streamtag.outage"):
                    outages.append(e)
                elif e["topic"].startswith("streamtag.genre"):
                    windows[0] += 1
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        samples, t0, stop_s = [], time.monotonic(), None
        while proc.poll() is None:
            if minutes is not None and time.monotonic() - t0 >= minutes * 60:
                t_stop = time.monotonic()
                proc.send_signal(signal.SIGTERM)  # it tags what is buffered first: slow when starved of CPU
                try:
                    proc.wait(300)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                stop_s = round(time.monotonic() - t_stop, 1)
                break
            r = rss(proc.pid)
            if r and windows[0]:
                samples.append(r)
            time.sleep(1.0)
        reader.join(30)
        err = proc.stderr.read()
    wall = time.monotonic() - t0
    final = statuses[-1] if statuses else {}
    k = max(1, len(samples) // 10)
    late = [s for s in statuses if s["uptime_s"] > 60]
    return {"exit": proc.returncode, "wall_s": round(wall, 1), "sigterm_to_exit_s": stop_s, "windows": windows[0],
            "audio_s": final.get("windows", 0), "dropped_samples": final.get("dropped_samples"),
            "outages": final.get("outages"), "reconnected": sum(e["state"] == "connected" for e in outages),
            "backlog_max_s_after_1min": round(max((s["backlog_s"] for s in late), default=0.0), 2),
            "latency_p99_ms": final.get("latency_p99_ms"),
            "rss_first10_mib": round(float(np.mean(samples[:k])) / 2**20, 1) if samples else None,
            "rss_last10_mib": round(float(np.mean(samples[-k:])) / 2**20, 1) if samples else None,
            "stderr_tail": err.strip().splitlines()[-1:] if proc.returncode else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0, help="audio of the accelerated phase (default 1; 0: skip it)")
    ap.add_argument("--minutes", type=float, default=10.0, help="real-time phase (default 10)")
    ap.add_argument("--reconnect-every", type=float, default=120.0)
    ap.add_argument("--model", default="fast")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        mp3 = Path(tmp) / "soak.mp3"
        seconds = build_mp3(mp3, args.hours or args.minutes / 60)
        srv, base = serve(mp3.read_bytes(), seconds, args.reconnect_every)
        print(f"stream: {seconds / 3600:.2f} h of real clips, {mp3.stat().st_size / 2**20:.1f} MiB MP3", flush=True)
        if args.hours:
            a = run_monitor(f"{base}/file", args.model, ["--fast", "--no-publish"], None)
            print(f"RESULT phase=accelerated {json.dumps(a)}", flush=True)
        port = srv.server_address[1] + 1
        while True:
            try:
                probe = zmq.Context.instance().socket(zmq.PUB)
                probe.bind(f"tcp://127.0.0.1:{port}")
                probe.close(0)
                break
            except zmq.ZMQError:
                port += 1
        slow = {"got": 0}
        stop = threading.Event()

        def slow_subscriber():
            sub = zmq.Context.instance().socket(zmq.SUB)
            sub.setsockopt(zmq.RCVHWM, 10)
            sub.connect(f"tcp://127.0.0.1:{port}")
            sub.setsockopt_string(zmq.SUBSCRIBE, "")
            while not stop.is_set():
                if sub.poll(100):
                    sub.recv()
                    slow["got"] += 1
                    time.sleep(2.0)
            sub.close(0)
        t = threading.Thread(target=slow_subscriber, daemon=True)
        t.start()
        b = run_monitor(f"{base}/live", args.model, ["--publish", f"tcp://127.0.0.1:{port}"], args.minutes)
        stop.set()
        t.join(5)
        b["slow_subscriber_got"] = slow["got"]
        print(f"RESULT phase=realtime {json.dumps(b)}", flush=True)
        srv.shutdown()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
