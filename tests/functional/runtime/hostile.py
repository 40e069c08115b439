"""Shared checks of the hostile-input suite: what every case asserts, runners (in-process, or subprocesses
started side by side) and makers of nasty files.

Every case asserts: the command ended within a bound; the exit code; exactly the expected number
of ``streamtag: error:`` lines and nothing on stderr that does not start with ``streamtag:`` (no
traceback, no numpy warning, no C-library chatter); every stdout line strict JSON (no NaN, no
Infinity) and every event schema-valid.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import soundfile as sf

from clitools import REPO, cli_env
from streamtag import cli, events, strictjson

_SCHEMA = events.schema()
_VALIDATORS = {t: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{t}", "$defs": _SCHEMA["$defs"]})
               for t in (events.GENRE, events.CHANGE, events.STATUS, events.LEVEL, events.OUTAGE)}


@dataclass
class Run:
    """What one run of the CLI left behind."""

    code: int | None
    out: str
    err: str
    elapsed: float

    @property
    def lines(self) -> list[dict]:
        """stdout parsed strictly, one JSON value per line (fails on NaN/Infinity or bad JSON)."""
        return [strictjson.loads(line) for line in self.out.splitlines() if line.strip()]

    def events(self, topic: str | None = None) -> list[dict]:
        """The event lines (``topic`` added by ``--json``), optionally one topic."""
        return [e for e in self.lines if isinstance(e, dict) and (topic is None or e.get("topic") == topic)]


def validate_event(event: dict) -> None:
    """Schema-check one event line (``topic`` key included, as ``--json`` and ``subscribe`` print it)."""
    e = dict(event)
    topic = e.pop("topic")
    _VALIDATORS[topic].validate(e)


def check(run: Run, code: int, *needles: str, errors: int | None = None, bound: float = 60.0,
          jsonl: bool = True) -> list[str]:
    """The common assertions; returns the ``streamtag: error:`` lines.

    ``errors``: how many error lines (default: 1 when ``code`` is non-zero, else 0); ``jsonl``:
    stdout is JSON lines (strictly parsed, events schema-checked) rather than human text.
    """
    assert run.elapsed < bound, f"took {run.elapsed:.1f} s (bound {bound} s)"
    assert run.code == code, (run.code, run.err[-2000:])
    err_lines = [line for line in run.err.splitlines() if line.strip()]
    stray = [line for line in err_lines if not line.startswith("streamtag:")]
    assert not stray, "stderr lines not from streamtag:\n" + "\n".join(stray[:20])
    errs = [line for line in err_lines if line.startswith("streamtag: error:")]
    want = (1 if code else 0) if errors is None else errors
    assert len(errs) == want, err_lines
    for needle in needles:
        assert any(needle in line for line in errs), (needle, errs)
    for e in run.lines if jsonl else ():
        if isinstance(e, dict) and e.get("topic", "").startswith("streamtag."):
            validate_event(e)
    return errs


def run_cli(capfd, *argv, stdin: bytes | None = None) -> Run:
    """``streamtag ARGV`` in this process (fd-level capture: C-library chatter on fd 2 shows up too)."""
    saved_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    capfd.readouterr()
    t0 = time.monotonic()
    try:
        code = cli.main([str(a) if not isinstance(a, str) else a for a in argv])
    finally:
        sys.stdin = saved_stdin
    elapsed = time.monotonic() - t0
    out, err = capfd.readouterr()
    return Run(code, out, err, elapsed)


def popen(*argv, env: dict | None = None, **kw) -> subprocess.Popen:
    """Start ``python -m streamtag ARGV`` (stdout/stderr piped as bytes; bytes arguments passed as they are).

    Unbuffered pipes: a ``readline()`` before :func:`finish` never swallows what follows the line.
    """
    args = [a if isinstance(a, bytes) else str(a) for a in argv]
    return subprocess.Popen([sys.executable, "-m", "streamtag", *args], env=cli_env(env), cwd=REPO, bufsize=0,
                            stdout=kw.pop("stdout", subprocess.PIPE), stderr=kw.pop("stderr", subprocess.PIPE),
                            stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)


def finish(proc: subprocess.Popen, t0: float, timeout: float, stdin: bytes | None = None) -> Run:
    """Wait for ``proc`` (killing it after ``timeout``: code None) and collect its output."""
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        code = None
    return Run(code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"),
               time.monotonic() - t0)


# --- nasty files -----------------------------------------------------------------------------------

def music(seconds: float, rate: int = 22050) -> np.ndarray:
    """A deterministic music-like test signal (chords with an envelope), float32 mono in +-0.5."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440)) / 8
    return (x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


def patch(path: Path, offset: int, fmt: str, value) -> Path:
    """Overwrite a little-endian field of a file in place (a header that lies)."""
    b = bytearray(path.read_bytes())
    b[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(b))
    return path


def wav(path: Path, x: np.ndarray, rate: int = 22050, subtype: str = "PCM_16") -> Path:
    """Write a canonical 44-byte-header WAV (fields at fixed offsets: channels 22, rate 24, data size 40)."""
    sf.write(path, x, rate, subtype=subtype, format="WAV")
    return path


def flac_total_samples(path: Path, total: int) -> Path:
    """Make a FLAC's STREAMINFO claim ``total`` samples (36-bit field)."""
    b = bytearray(path.read_bytes())
    assert b[:4] == b"fLaC" and b[4] & 0x7F == 0
    off = 8 + 10  # after "fLaC", the block header and four 16/24-bit size fields
    (word,) = struct.unpack(">Q", b[off:off + 8])
    word = (word & ~((1 << 36) - 1)) | (total & ((1 << 36) - 1))
    b[off:off + 8] = struct.pack(">Q", word)
    path.write_bytes(bytes(b))
    return path
