"""Audio sources: input device, file, raw PCM on stdin, http(s)/Icecast URL.

Every source writes mono float32 at its own rate into its capture
:class:`~streamtag.ringbuffer.RingBuffer` (``source.ring``, made once the rate is known); the
pipeline's worker resamples it to the model's rate with soxr (:class:`streamtag.audio.StreamResampler`).
Channels are averaged as in :func:`streamtag.audio.to_mono`. A device drops what does not fit
(counted); file, stdin and URL readers wait for room and never drop.

Network inputs reconnect: a dropped or stalled stream is reopened after a backoff with jitter, and
each change of ``state`` is queued in ``notes`` at the sample position where it happened, so the
worker reports it in order with the audio.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from .audio import StreamResampler, decode_error, open_decoder, to_mono
from .decode import FORMAT_BY_CONTENT_TYPE, AvDecoder
from .errors import RuntimeFailure, StreamtagError, UsageError
from .icy import IcyStream, StreamError, normalize_url
from .ringbuffer import RingBuffer

BLOCK_SECONDS = 0.05
"""Block size of file and stdin readers."""

FIRST_CALLBACK_TIMEOUT = 10.0
"""Seconds :meth:`MicSource.start` waits for the device's first audio callback."""

MAX_LAG_SECONDS = 1.0
"""A paced reader this far behind real time (after a stall) restarts its clock instead of bursting."""

BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_JITTER = 1.0, 60.0, 0.25
"""Reconnect delay: first wait (an immediate retry often fails), cap, and +-fraction of random jitter."""

STATES = ("connecting", "connected", "reconnecting", "down", "ended")
"""``state`` values: before the first audio, delivering, between connections, failed for good, input ended."""

OUTAGE = "outage"
"""Kind of note a network source queues for the worker (payload: the ``streamtag.outage`` fields)."""
TITLE = "title"
"""Kind of note carrying a new ICY ``StreamTitle``."""


def _noop() -> None:
    pass


class Source:
    """Base: ``start(buffer_seconds, wake)`` begins producing, ``finished`` says no more samples will come."""

    rate: int = 0
    """Sample rate of what this source writes into the ring (0 until known)."""
    name: str = ""
    """Default stream name for events."""
    description: str = ""
    """Human description (printed at start, shown by the TUI)."""
    overflows: int = 0
    """Input overflows the device reported (audio lost before reaching the ring)."""
    error: StreamtagError | None = None
    """Set when the source died; the pipeline reports it and exits non-zero."""
    has_titles: bool = False
    """True for inputs that may carry ICY titles (genre events then have a ``title`` field)."""

    def __init__(self) -> None:
        self.ring: RingBuffer | None = None
        """Capture ring (None until the rate is known)."""
        self.state = "connecting"
        """One of :data:`STATES`."""
        self.outages = 0
        """Times the input was lost and reconnecting began."""
        self.last_error: str | None = None
        """The latest failure, as one line."""
        self.notes: deque[tuple[int, str, object]] = deque()
        """``(sample position, kind, payload)`` for the worker, in order (:data:`OUTAGE`, :data:`TITLE`)."""
        self._wake: Callable[[], None] = _noop
        self._buffer_seconds = 20.0

    def start(self, buffer_seconds: float, wake: Callable[[], None] = _noop) -> None:
        """Begin writing; ``wake()`` is called when the ring holds what the worker waits for
        (:meth:`RingBuffer.wake_at`), after notes and at the end. Raises :class:`UsageError` if the
        input cannot be opened."""
        raise NotImplementedError

    def _make_ring(self) -> None:
        self.ring = RingBuffer(int(self._buffer_seconds * self.rate), on_data=self._wake)

    def _note(self, kind: str, payload: object) -> None:
        self.notes.append((self.ring.written if self.ring is not None else 0, kind, payload))
        self._wake()

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
        super().__init__()
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
        self._stream = None
        self._stopped = False
        self.callbacks = 0
        """Audio callbacks so far."""

    def _callback(self, indata, frames, time_info, status) -> None:
        # Runs on PortAudio's thread: no logging, no new buffers; the ring wakes the worker (an event's set)
        # only on the write that completes what it waits for (a window, or the level meter's next block)
        if status.input_overflow:
            self.overflows += 1
        self.ring.write_mixed(indata)
        self.callbacks += 1

    def start(self, buffer_seconds: float, wake: Callable[[], None] = _noop) -> None:
        """Open and start the input stream, then wait for its first callback."""
        self._buffer_seconds, self._wake = buffer_seconds, wake
        self._make_ring()
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
        self.state = "connected"

    @property
    def finished(self) -> bool:
        """True after :meth:`stop`, or when the device stopped delivering (then ``error`` is set)."""
        if self._stopped:
            return True
        if self._stream is not None and not self._stream.active:
            self.error = RuntimeFailure(f"{self.description}: input stream stopped")
            self.state, self.last_error = "down", str(self.error)
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


class _Pacer:
    """Sleeps a reader to real time; after a stall it restarts its clock instead of bursting."""

    def __init__(self, rate: int, stop: threading.Event):
        self.rate, self._stop = rate, stop
        self.reset()

    def reset(self) -> None:
        self.t0, self.n = time.monotonic(), 0

    def wait(self, n: int) -> None:
        """Account ``n`` samples just written and sleep until they are due."""
        self.n += n
        delay = self.t0 + self.n / self.rate - time.monotonic()
        if delay < -MAX_LAG_SECONDS:
            self.reset()
        elif delay > 0:
            self._stop.wait(delay)


class _ReaderSource(Source):
    """A source fed by a reader thread; :meth:`_run` writes blocks with :meth:`_write`."""

    paced = False
    """Sleep to real time between blocks (files and URLs without ``--fast``)."""

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._pacer: _Pacer | None = None

    def _blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        """Release the input (reader thread, at the end)."""

    def start(self, buffer_seconds: float, wake: Callable[[], None] = _noop) -> None:
        """Start the reader thread."""
        self._buffer_seconds, self._wake = buffer_seconds, wake
        if self.rate:
            self._make_ring()
        self._thread = threading.Thread(target=self._read, name=f"source {self.name}", daemon=True)
        self._thread.start()

    def _write(self, mono: np.ndarray) -> bool:
        """Store all of ``mono`` (waiting for room, never dropping), then pace; False when stopped."""
        if not self.ring.write_all(mono, self._stop.is_set):
            return False
        if self.paced:
            if self._pacer is None:
                self._pacer = _Pacer(self.rate, self._stop)
            self._pacer.wait(len(mono))
        return not self._stop.is_set()

    def _run(self) -> None:
        self.state = "connected"
        for block in self._blocks():
            if not self._write(to_mono(block)):
                return

    def _read(self) -> None:
        try:
            self._run()
            if self.state != "down":
                self.state = "ended"
        except StreamtagError as exc:
            self.error = exc
        except Exception as exc:  # a decoder failing mid-stream must end the run with one line
            self.error = UsageError(f"{self.description}: read failed ({decode_error(exc)})")
        finally:
            if self.error is not None:
                self.state, self.last_error = "down", str(self.error)
            self._close()
            self._done.set()
            self._wake()

    @property
    def finished(self) -> bool:
        """True when the reader reached the end, failed, or was stopped."""
        return self._done.is_set() or self._stop.is_set()

    def stop(self) -> None:
        """Ask the reader to stop (a thread blocked on a pipe is a daemon and dies with the process)."""
        self._stop.set()
        if self.ring is not None:
            self.ring.wake_writer()
        self._wake()


class FileSource(_ReaderSource):
    """A file in real time or ``fast``, through the decoder registered for its extension
    (:func:`streamtag.audio.open_decoder`: libsndfile for wav/flac/ogg/mp3..., PyAV for m4a/AAC, ALAC,
    Opus in MP4, video containers)."""

    def __init__(self, path: str, fast: bool = False):
        super().__init__()
        self.path = path
        self._file = open_decoder(path)
        self.rate = self._file.rate
        self.paced = not fast
        self.name = Path(path).name
        length = "" if self._file.frames is None else f", {self._file.frames / self.rate:.1f} s"
        self.description = (f"file {path} ({self.rate} Hz, {self._file.channels} ch{length}"
                            f"{', fast' if fast else ''})")

    def _blocks(self) -> Iterator[np.ndarray]:
        block = max(1, int(self.rate * BLOCK_SECONDS))
        while len(data := self._file.read(block)):
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


def backoff(attempt: int, rng: random.Random = random.Random()) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 = the first after a drop): doubling, capped, jittered."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** min(attempt, 16))
    return base * rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


class UrlSource(_ReaderSource):
    """An http(s)/Icecast stream decoded in process (PyAV), with ICY titles and reconnects.

    A stream that drops, ends without a stated length, or stalls (no audio for ``stall_timeout`` s)
    is reopened after :func:`backoff`; ``retries`` bounds the reconnect attempts in a row that bring
    no audio (None: forever; a stream that plays again resets the count). Before the stream has
    played, failures are a bad input (exit 2) unless ``patient`` (monitor stations keep trying,
    except on 4xx answers); a finite body (Content-Length) that arrives in full is a normal end.
    Output rate is the first connection's; later connections are soxr-resampled to it.
    """

    has_titles = True

    def __init__(self, url: str, fast: bool = False, stall_timeout: float = 10.0, retries: int | None = None,
                 patient: bool = False):
        super().__init__()
        self.url = normalize_url(url)
        self.stall_timeout, self.retries, self.patient = stall_timeout, retries, patient
        self.name = url
        self.description = f"url {url}{' (fast)' if fast else ''}"
        self._fast = fast
        self._conn: IcyStream | None = None
        self._down_since: float | None = None
        self._got = 0
        self.title: str | None = None
        """The latest ICY ``StreamTitle`` (None before one arrives)."""

    def _on_title(self, title: str) -> None:
        if title != self.title:
            self.title = title
            self._note(TITLE, title)

    def _outage(self, state: str, **fields) -> None:
        self.state = state
        self._note(OUTAGE, {"state": state, "outages": self.outages, "error": self.last_error, **fields})

    def _run(self) -> None:
        played = False      # any audio ever
        without_audio = 0   # reconnect attempts in a row that brought no audio
        reconnecting = False
        while not self._stop.is_set():
            terminal, error = False, None
            self._got = 0
            try:
                if self._session():
                    return
                error = "stream ended" if self._conn is None or self._conn.content_length is None else \
                    f"stream cut after {self._conn.received} of {self._conn.content_length} bytes"
                terminal = self._conn is not None and self._conn.content_length is not None
            except StreamError as exc:  # after audio, a 404 is an Icecast mount whose source is restarting
                error = str(exc)
                terminal = exc.terminal and not (played and getattr(exc, "status", 0) == 404)
            except UsageError as exc:  # not decodable audio
                error, terminal = str(exc).removeprefix(f"{self.url}: "), not played
            except OSError as exc:
                error = exc.strerror or str(exc)
            if self._stop.is_set():
                return
            played = played or self._got > 0
            without_audio = 0 if self._got else without_audio + reconnecting
            self.last_error = error
            if not played and not self.patient:
                terminal = True
            if terminal or (self.retries is not None and without_audio >= self.retries):
                why = "" if terminal else f"; gave up after {without_audio} reconnect attempts without audio"
                cls = RuntimeFailure if played else UsageError
                self.error = cls(f"{self.name}: {error}{why}")
                self.last_error = str(self.error)
                self._outage("down")
                return
            if self.state != "reconnecting":
                self.outages += 1
                self._down_since = time.monotonic()
            delay = backoff(without_audio)
            self._outage("reconnecting", attempt=without_audio + 1, retry_in_s=round(delay, 3))
            reconnecting = True
            if self._stop.wait(delay):
                return

    def _session(self) -> bool:
        """One connection (samples written counted in ``_got``); True when a finite body arrived in full."""
        conn = IcyStream(self.url, self.stall_timeout, on_title=self._on_title)
        self._conn = conn
        if self._stop.is_set():
            conn.close()
        try:
            # a live stream is paced by its server (pacing it again would drift against the server's
            # clock until the server drops us); a finite file over HTTP is paced like a local file
            self.paced = not self._fast and conn.content_length is not None
            ctype = conn.headers.get("content-type", "").split(";")[0].strip().lower()
            with AvDecoder(conn, self.url, FORMAT_BY_CONTENT_TYPE.get(ctype)) as dec:
                if not self.rate:
                    self.rate = dec.rate
                    self._make_ring()
                    self.description = f"url {self.name} ({dec.codec}, {dec.rate} Hz, {dec.channels} ch" \
                                       f"{', fast' if self._fast else ''})"
                resampler = StreamResampler(dec.rate, self.rate) if dec.rate != self.rate else None
                if self._pacer is not None:
                    self._pacer.reset()
                for block in dec.blocks():
                    conn.touch()
                    mono = to_mono(block)
                    if resampler is not None:
                        mono = resampler.process(mono)
                    if not self._got and self.state != "connected":
                        self._connected()
                    self._got += len(mono)
                    if not self._write(mono):
                        break
        finally:
            conn.close()
        return conn.complete

    def _connected(self) -> None:
        if self.state == "reconnecting":
            down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
            self._outage("connected", duration_s=round(down, 3))
        else:
            self.state = "connected"

    def stop(self) -> None:
        """Stop reading: closes the connection, which ends a blocked read at once."""
        super().stop()
        conn = self._conn
        if conn is not None:
            conn.close()


def open_source(input_spec: str | None, device: str | None, rate: int | None, channels: int | None,
                fmt: str, fast: bool, stall_timeout: float = 10.0, retries: int | None = None,
                patient: bool = False) -> Source:
    """Pick the source for ``--input`` / ``--device``: None = device, ``-`` = stdin, URL, else a file."""
    if input_spec is None:
        return MicSource(device, rate, channels)
    if input_spec == "-":
        return StdinSource(rate, channels, fmt)
    if is_url(input_spec):
        return UrlSource(input_spec, fast, stall_timeout, retries, patient)
    return FileSource(input_spec, fast)
