"""Helpers for functional runtime tests: real clips from the shared data, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
GTZAN = SHARED / "data" / "gtzan-mini"


def gtzan_track(genre: str, n: int = 0) -> Path:
    """Path of a gtzan-mini track (fails the test when the shared data is missing)."""
    p = GTZAN / genre / f"{genre}.{n:05d}.flac"
    if not p.is_file():
        pytest.fail(f"shared data missing: {p} (set STREAMTAG_SHARED)")
    return p


def write_clip(dest: Path, genre: str, seconds: float, n: int = 0, offset: float = 5.0) -> Path:
    """Write ``seconds`` of a real gtzan-mini track (from ``offset``) as a WAV file; returns ``dest``."""
    x, rate = sf.read(gtzan_track(genre, n), dtype="float32")
    a = int(offset * rate)
    sf.write(dest, x[a:a + int(seconds * rate)], rate)
    return dest


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for CLI subprocesses: repo importable, no stray STREAMTAG_* settings; no user config
    (``$XDG_CONFIG_HOME`` is the session's empty folder, see ``tests/conftest.py``)."""
    keep = {"STREAMTAG_SHARED", "STREAMTAG_REQUIRE_AUDIO"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMTAG_") or k in keep}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def streamtag(*args, env: dict[str, str] | None = None, timeout: float = 60,
              stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m streamtag ARGS`` (``stdin`` bytes fed to it) and capture its output as text."""
    r = subprocess.run([sys.executable, "-m", "streamtag", *map(str, args)], env=cli_env(env), input=stdin,
                       stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True,
                       timeout=timeout, cwd=REPO)
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r


def streamtag_popen(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """Start ``python -m streamtag ARGS`` in the background (stdout/stderr piped, text)."""
    return subprocess.Popen([sys.executable, "-m", "streamtag", *map(str, args)], env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, **kw)


def json_lines(text: str) -> list[dict]:
    """Parse every line of ``text`` as JSON."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """The command failed with ``code`` and exactly one ``streamtag: error:`` line on stderr, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == code, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("streamtag: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class ChildLines:
    """Collects a child's stdout JSON lines on a thread; ``get(topic)``, ``wait(what, condition)``."""

    def __init__(self, proc):
        self.items, self._lock = [], threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, f):
        for line in f:
            with self._lock:
                self.items.append(json.loads(line))

    def get(self, topic):
        with self._lock:
            return [e for e in self.items if e["topic"] == topic]

    def wait(self, what, condition, timeout=30):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def join(self):
        self._thread.join(10)
