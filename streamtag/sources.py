"""Audio sources: input device, file, raw PCM on stdin, http(s)/Icecast URL.

Every source writes mono float32 at its own rate into the pipeline's capture
:class:`~streamtag.ringbuffer.RingBuffer`; the worker resamples it to the model's rate with
soxr (:class:`streamtag.audio.StreamResampler`). Channels are averaged as in
:func:`streamtag.audio.to_mono`.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf

from .audio import decode_error, open_audio, to_mono
from .errors import RuntimeFailure, StreamtagError, UsageError
from .ringbuffer import RingBuffer

BLOCK_SECONDS = 0.05
"""Block size of file, stdin and URL readers."""

FIRST_CALLBACK_TIMEOUT = 10.0
"""Seconds :meth:`MicSource.start` waits for the device's first audio callback."""


class Source:
    """Base: ``start(ring)`` begins producing, ``finished`` says no more samples will come."""

    rate: int = 0
    """Sample rate of what this source writes into the ring."""
    name: str = ""
    """Default stream name for events."""
    description: str = ""
    """Human description (printed at start, shown by the TUI)."""
    overflows: int = 0
    """Input overflows the device reported (audio lost before reaching the ring)."""
    error: StreamtagError | None = None
    """Set when the source died; the pipeline reports it and exits non-zero."""

    def start(self, ring: RingBuffer) -> None:
        """Begin writing into ``ring``; raises :class:`UsageError` if the input cannot be opened."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """True once the source will write nothing more (end of input, stopped, or failed)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop producing and release the input; idempotent."""
        raise NotImplementedError


class MicSource(Source):
    """An input device through PortAudio (sounddevice); the callback only mixes into the ring."""

    def __init__(self, device: str | None, rate: int | None = None, channels: int | None = None):
        import sounddevice as sd  # PortAudio is loaded only when a device is used
        self._sd = sd
        dev = int(device) if device is not None and device.strip().isdigit() else device
        try:
            info = sd.query_devices(dev, kind="input")
        except (ValueError, sd.PortAudioError) as exc:
            what = f"input device {device!r}" if device is not None else "no usable default input device"
            raise UsageError(f"{what}: {decode_error(exc)} (see `streamtag devices`; no microphone? "
                             f"give --input FILE|URL|-)") from None
        if info["max_input_channels"] < 1:
            raise UsageError(f"device {info['name']!r} has no input channels (see `streamtag devices`)")
        self.device = info["index"]
        self.rate = int(rate or info["default_samplerate"])
        self.channels = int(channels or min(2, info["max_input_channels"]))
        try:
            sd.check_input_settings(self.device, channels=self.channels, dtype="float32", samplerate=self.rate)
        except (ValueError, sd.PortAudioError) as exc:
            raise UsageError(f"device {info['name']!r}: {self.rate} Hz x {self.channels} ch not supported "
                             f"({decode_error(exc)})") from None
        self.name = f"mic:{info['name'] if device is not None else 'default'}"
        self.description = f"device {info['name']!r} ({self.rate} Hz, {self.channels} ch)"
        self._ring: RingBuffer | None = None
        self._stream = None
        self._stopped = False
        self.callbacks = 0
        """Audio callbacks so far."""

    def _callback(self, indata, frames, time_info, status) -> None:
        # Runs on PortAudio's thread: no locks, no logging, no new buffers.
        if status.input_overflow:
            self.overflows += 1
        self._ring.write_mixed(indata)
        self.callbacks += 1

    def start(self, ring: RingBuffer) -> None:
        """Open and start the input stream, then wait for its first callback."""
        self._ring = ring
        sd = self._sd
        try:
            self._stream = sd.InputStream(device=self.device, samplerate=self.rate, channels=self.channels,
                                          dtype="float32", callback=self._callback)
            self._stream.start()
        except (ValueError, sd.PortAudioError) as exc:
            raise UsageError(f"{self.description}: cannot open ({decode_error(exc)})") from None
        deadline = time.monotonic() + FIRST_CALLBACK_TIMEOUT
        while self.callbacks == 0:
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeFailure(f"{self.description}: no audio within {FIRST_CALLBACK_TIMEOUT:.0f} s")
            time.sleep(0.005)

    @property
    def finished(self) -> bool:
        """True after :meth:`stop`, or when the device stopped delivering (then ``error`` is set)."""
        if self._stopped:
            return True
        if self._stream is not None and not self._stream.active:
            self.error = RuntimeFailure(f"{self.description}: input stream stopped")
            return True
        return False

    def stop(self) -> None:
        """Stop and close the stream."""
        if self._stopped:
            return
        self._stopped = True
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()


class _ReaderSource(Source):
    """A source fed by a reader thread: ``_blocks()`` yields ``(frames, channels)`` float32 arrays."""

    paced = False
    """Sleep to real time between blocks (dropping what the ring cannot take) instead of waiting for room."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the input (reader thread, at the end)."""

    def start(self, ring: RingBuffer) -> None:
        """Start the reader thread."""
        self._thread = threading.Thread(target=self._read, args=(ring,), name=f"source {self.name}", daemon=True)
        self._thread.start()

    def _read(self, ring: RingBuffer) -> None:
        t0, n = time.monotonic(), 0
        try:
            for block in self._blocks():
                mono = to_mono(block)
                if self.paced:
                    ring.write(mono)
                    n += len(mono)
                    delay = t0 + n / self.rate - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                elif not ring.write_all(mono, self._stop.is_set):
                    break
                if self._stop.is_set():
                    break
        except StreamtagError as exc:
            self.error = exc
        except Exception as exc:  # a decoder failing mid-stream must end the run with one line
            self.error = UsageError(f"{self.description}: read failed ({decode_error(exc)})")
        finally:
            self._close()
            self._done.set()

    @property
    def finished(self) -> bool:
        """True when the reader reached the end, failed, or was stopped."""
        return self._done.is_set() or self._stop.is_set()

    def stop(self) -> None:
        """Ask the reader to stop (a thread blocked on a pipe is a daemon and dies with the process)."""
        self._stop.set()


class FileSource(_ReaderSource):
    """Any file libsndfile decodes (wav/flac/ogg/mp3...), in real time or ``fast``."""

    def __init__(self, path: str, fast: bool = False):
        super().__init__()
        self._file = open_audio(path)
        self.path = path
        self.rate = self._file.samplerate
        self.paced = not fast
        self.name = Path(path).name
        self.description = (f"file {path} ({self.rate} Hz, {self._file.channels} ch, "
                            f"{self._file.frames / self.rate:.1f} s{', fast' if fast else ''})")

    def _blocks(self) -> Iterator[np.ndarray]:
        block = max(1, int(self.rate * BLOCK_SECONDS))
        while True:
            try:
                data = self._file.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise UsageError(f"{self.path}: cannot decode audio ({decode_error(exc)})") from None
            if not len(data):
                return
            yield data

    def _close(self) -> None:
        self._file.close()


def pcm_blocks(stream: BinaryIO, channels: int, fmt: str, frames_per_block: int) -> Iterator[np.ndarray]:
    """Decode raw interleaved little-endian PCM (``s16le`` or ``f32le``) into float32 ``(frames, channels)``."""
    dtype = np.dtype("<i2") if fmt == "s16le" else np.dtype("<f4")
    frame_bytes = dtype.itemsize * channels
    pending = b""
    while True:
        chunk = stream.read(frames_per_block * frame_bytes)
        if not chunk:
            return
        pending += chunk
        usable = len(pending) - len(pending) % frame_bytes
        if usable:
            x = np.frombuffer(pending[:usable], dtype=dtype).reshape(-1, channels)
            pending = pending[usable:]
            yield x.astype(np.float32) / 32768.0 if fmt == "s16le" else x.astype(np.float32)


class StdinSource(_ReaderSource):
    """Raw PCM on stdin; the pipe's own pace is kept (the reader waits for room, never drops)."""

    def __init__(self, rate: int | None, channels: int | None, fmt: str = "s16le"):
        super().__init__()
        self.rate, self.channels, self.fmt = rate or 44100, channels or 1, fmt
        self.name = "stdin"
        self.description = f"stdin ({fmt}, {self.rate} Hz, {self.channels} ch)"

    def _blocks(self) -> Iterator[np.ndarray]:
        yield from pcm_blocks(sys.stdin.buffer, self.channels, self.fmt, int(self.rate * BLOCK_SECONDS))


def is_url(spec: str) -> bool:
    """True for inputs :class:`UrlSource` handles."""
    return spec.split("://", 1)[0].lower() in ("http", "https", "icecast") and "://" in spec


class UrlSource(_ReaderSource):
    """An http(s)/Icecast stream decoded by an ``ffmpeg`` subprocess (no shell) to float32 WAV.

    ffmpeg keeps the stream's own rate and channels; mixing and resampling stay ours.
    """

    def __init__(self, url: str, fast: bool = False):
        super().__init__()
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise UsageError(f"{url}: URL input needs ffmpeg on PATH")
        self.url = url.replace("icecast://", "http://", 1) if url.lower().startswith("icecast://") else url
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-rw_timeout", "15000000"]
        cmd += [] if fast else ["-re"]
        cmd += ["-i", self.url, "-vn", "-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
        # own session: a terminal Ctrl-C reaches streamtag only, which then stops ffmpeg itself
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
        try:
            self.channels, self.rate = self._read_wav_header()
        except BaseException:  # a stop signal while connecting too: never leave ffmpeg behind
            self._close()
            raise
        self.name = url
        self.description = f"url {url} ({self.rate} Hz, {self.channels} ch{', fast' if fast else ''})"

    def _ffmpeg_error(self) -> UsageError:
        self._proc.wait(timeout=20)
        lines = self._proc.stderr.read().decode(errors="replace").strip().splitlines()
        return UsageError(f"{self.url}: ffmpeg cannot read it ({lines[-1] if lines else 'no audio'})")

    def _read_exact(self, n: int) -> bytes:
        data = self._proc.stdout.read(n)
        if len(data) < n:
            raise self._ffmpeg_error()
        return data

    def _read_wav_header(self) -> tuple[int, int]:
        if self._read_exact(12)[8:12] != b"WAVE":
            raise UsageError(f"{self.url}: ffmpeg did not produce WAV")
        channels = rate = 0
        while True:
            cid, size = struct.unpack("<4sI", self._read_exact(8))
            if cid == b"data":
                break
            body = self._read_exact(size + (size & 1))
            if cid == b"fmt ":
                channels, rate = struct.unpack("<HI", body[2:8])
        if not channels or not rate:
            raise UsageError(f"{self.url}: ffmpeg gave no audio format")
        return channels, rate

    def _blocks(self) -> Iterator[np.ndarray]:
        yield from pcm_blocks(self._proc.stdout, self.channels, "f32le", int(self.rate * BLOCK_SECONDS))
        if self._proc.wait() != 0 and not self._stop.is_set():
            raise self._ffmpeg_error()

    def _close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdout, self._proc.stderr):
            f.close()


def open_source(input_spec: str | None, device: str | None, rate: int | None, channels: int | None,
                fmt: str, fast: bool) -> Source:
    """Pick the source for ``--input`` / ``--device``: None = device, ``-`` = stdin, URL, else a file."""
    if input_spec is None:
        return MicSource(device, rate, channels)
    if input_spec == "-":
        return StdinSource(rate, channels, fmt)
    if is_url(input_spec):
        return UrlSource(input_spec, fast)
    return FileSource(input_spec, fast)
