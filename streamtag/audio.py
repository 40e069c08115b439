"""Decoding, mono mixing and resampling: the one audio path shared by training and runtime.

Every sample a model sees, in training or live, is mixed to mono by averaging channels and
resampled with soxr at HQ quality, so the two can never disagree about the resampler. Files are
decoded block by block (:class:`MonoStream`): memory stays bounded whatever a file's length or
what its header claims; :func:`load_mono` is the same stream gathered into one array.

Decoders are pluggable: :data:`DECODERS` maps a file extension to the function that opens it as
a :class:`Decoder` (libsndfile, or PyAV for m4a/AAC, ALAC, video containers); any other extension
is tried with libsndfile, then PyAV.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import soundfile as sf
import soxr

from .cstderr import quiet_c_stderr
from .errors import UsageError
from .settings import MAX_RATE, MIN_RATE

RESAMPLE_QUALITY = "HQ"
"""soxr quality used everywhere (training caches and live streams alike)."""

BLOCK_SAMPLES = 1 << 18
"""Most samples (all channels together) decoded in one block: the bound on a decode buffer."""

LOOKAHEAD_SAMPLES = 96
"""Input samples the HQ filter reaches past an output instant when upsampling (times the rate ratio when
downsampling): measured so that :meth:`StreamResampler.preview` matches the stream within 1e-6 for
common rates (8 kHz-192 kHz to 16, 22.05, 32 kHz and more)."""

PREVIEW_HISTORY = 1 << 14
"""Recent input samples a :class:`StreamResampler` keeps for :meth:`~StreamResampler.preview` (beyond soxr's
held-back output, ~0.37 s at 44.1 kHz)."""


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` or ``(frames,)`` array to float32 mono.

    Garbage beyond float32 range overflows to inf quietly; :func:`sanitize` then zeroes it.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    with np.errstate(over="ignore", invalid="ignore"):
        return x.mean(axis=1, dtype=np.float32)


def sanitize(x: np.ndarray) -> int:
    """Make float32 samples safe in place: NaN/inf become 0, samples beyond full scale are clipped to +-1.

    Returns how many samples were changed (0 on the fast path, when every sample is within +-1).
    """
    if x.size == 0:
        return 0
    with np.errstate(invalid="ignore"):
        if np.max(np.abs(x)) <= 1.0:  # NaN compares False: falls through
            return 0
    bad = ~np.isfinite(x)
    x[bad] = 0.0
    over = np.abs(x) > 1.0
    np.clip(x, -1.0, 1.0, out=x)
    return int(bad.sum()) + int(over.sum())


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole mono signal with soxr (HQ); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return x
    return soxr.resample(x, from_rate, to_rate, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)


class StreamResampler:
    """Chunked soxr resampler for live streams: same filter as :func:`resample`, same samples.

    soxr's stream holds output back in blocks (fed 20-ms chunks: up to ~42 ms of output at 22.05 -> 32 kHz,
    ~20 ms at 44.1 -> 32 kHz), far more than its filter needs (:attr:`lookahead`, ~4 ms). So a
    caller that needs the next samples now -- the end of a window -- asks :meth:`preview`: it
    resamples the recent input again in one piece, aligned to the stream's output grid, and returns
    the samples the stream will emit later, equal to them up to float rounding (~1e-7); or, not
    ``exact``, also the last few milliseconds whose filter still waits for input (then approximate).
    """

    def __init__(self, from_rate: int, to_rate: int):
        self.passthrough = from_rate == to_rate
        self.from_rate, self.to_rate = from_rate, to_rate
        self._rs = None if self.passthrough else soxr.ResampleStream(
            from_rate, to_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        g = math.gcd(from_rate, to_rate)
        self._p, self._q = from_rate // g, to_rate // g  # input period whose output is a whole number of samples
        self.lookahead = 0 if self.passthrough else math.ceil(LOOKAHEAD_SAMPLES * max(1.0, from_rate / to_rate))
        """Input samples after an output sample's instant that its value depends on (the filter's reach)."""
        self.consumed = 0
        """Input samples given to :meth:`process`."""
        self.emitted = 0
        """Output samples :meth:`process` returned."""
        self._history = None if self.passthrough else RingHistory(
            PREVIEW_HISTORY + 2 * (self._p + self.lookahead))

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk of mono float32 samples; ``last`` flushes the filter tail."""
        if self.passthrough:
            self.consumed += len(mono)
            self.emitted += len(mono)
            return mono
        x = np.ascontiguousarray(mono, dtype=np.float32)
        self._history.add(x)
        self.consumed += len(x)
        y = self._rs.resample_chunk(x, last=last)
        self.emitted += len(y)
        return y

    def previewable(self, exact: bool = True) -> int:
        """How many samples after the emitted ones :meth:`preview` can give now. ``exact``: only those whose
        filter has all the input it reaches; otherwise every sample whose instant the input has reached
        (the last :attr:`lookahead` input samples' worth computed as if silence followed)."""
        if self.passthrough:
            return 0
        ready = (self.consumed - (self.lookahead if exact else 0)) * self._q // self._p
        return max(0, ready - self.emitted)

    def preview(self, n: int, exact: bool = True) -> np.ndarray | None:
        """Output samples ``emitted .. emitted + n`` before the stream emits them (None if not all can be
        computed: see :meth:`previewable`, and the recent input kept). With ``exact=False`` the samples
        within the filter's reach of the newest input differ from the stream's later ones (the input
        after them is not in yet: one-shot resampling takes it as silence)."""
        if n <= 0 or n > self.previewable(exact):
            return None
        first = (self.emitted * self._p // self._q) - self.lookahead  # input the first sample reaches back to
        start = max(0, first // self._p * self._p)  # on the grid: output start * p / q is a whole sample
        if self.consumed - start > self._history.filled:
            return None
        segment = self._history.recent(self.consumed - start)
        y = soxr.resample(segment, self.from_rate, self.to_rate, quality=RESAMPLE_QUALITY)
        offset = self.emitted - start * self._q // self._p
        return y[offset:offset + n] if len(y) >= offset + n else None


class RingHistory:
    """The last ``capacity`` samples written (a reused buffer; :meth:`recent` copies them out in order)."""

    def __init__(self, capacity: int):
        self._buf = np.zeros(capacity, dtype=np.float32)
        self._scratch = np.zeros(capacity, dtype=np.float32)
        self.filled = 0
        """Samples held (up to the capacity)."""
        self._end = 0  # index after the newest sample

    def add(self, x: np.ndarray) -> None:
        """Append ``x`` (only its last ``capacity`` samples matter)."""
        cap = len(self._buf)
        x = x[-cap:]
        first = min(len(x), cap - self._end)
        self._buf[self._end:self._end + first] = x[:first]
        self._buf[:len(x) - first] = x[first:]
        self._end = (self._end + len(x)) % cap
        self.filled = min(cap, self.filled + len(x))

    def recent(self, n: int) -> np.ndarray:
        """The newest ``n`` samples, oldest first (a view of a scratch buffer reused by the next call)."""
        cap = len(self._buf)
        start = (self._end - n) % cap
        first = min(n, cap - start)
        out = self._scratch[:n]
        out[:first] = self._buf[start:start + first]
        out[first:] = self._buf[:n - first]
        return out


class AudioFile(sf.SoundFile):
    """A :class:`soundfile.SoundFile` whose reads keep decoder chatter off stderr and fail in one line.

    A read that hits corrupt data raises :class:`RuntimeError` saying where (libsndfile itself
    only says "Unspecified internal error.").
    """

    def read(self, *args, **kwargs):  # noqa: D102 - same as SoundFile.read
        position = self.tell()
        try:
            with quiet_c_stderr():
                return super().read(*args, **kwargs)
        except sf.LibsndfileError:
            where = f" after {position / self.samplerate:.1f} s" if position else ""
            raise RuntimeError(f"corrupt audio data{where}") from None


def regular_file(path: str | Path) -> bytes:
    """``path`` as bytes (names that are not UTF-8 work too) once it is known to be a regular file.

    Raises :class:`UsageError` (one line) for a missing or unreadable path, a folder, or something that
    is not a regular file (a FIFO would block, a device never ends: use ``--input -`` for a pipe).
    """
    name = os.fsencode(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot open ({exc.strerror})") from None
    except ValueError:  # a NUL byte (possible from a config file or the API, not from argv)
        raise UsageError(f"{path}: not a valid file name") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: not a regular file (a pipe or device: send raw PCM to `--input -` instead)")
    return name


def open_audio(path: str | Path) -> AudioFile:
    """Open a regular file libsndfile decodes for block-wise reading (the caller closes it).

    Raises :class:`UsageError` with a one-line message for missing, unreadable, non-regular
    (see :func:`regular_file`), empty or implausible files (sample rate outside 1 kHz..768 kHz).
    Any file name the OS accepts works, UTF-8 or not.
    """
    name = regular_file(path)
    try:
        with quiet_c_stderr():
            f = AudioFile(name)  # by name: libsndfile needs the extension to find headerless MP3
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot decode audio ({_open_error(exc)})") from None
    if f.frames == 0:
        f.close()
        raise UsageError(f"{path}: file holds no audio samples")
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        f.close()
        raise UsageError(f"{path}: implausible sample rate {f.samplerate} Hz in the header "
                         f"(expected {MIN_RATE}..{MAX_RATE})")
    return f


def _open_error(exc: Exception) -> str:
    """The reason libsndfile could not open a regular file, without its misleading stock phrases."""
    msg = decode_error(exc)
    if isinstance(exc, sf.LibsndfileError) and ("not a regular file" in msg or "Unspecified internal" in msg):
        return "not a recognised audio format, or a corrupt header"
    return msg.split(": ", 1)[1] if msg.startswith("Error opening ") and ": " in msg else msg


def decode_error(exc: Exception) -> str:
    """First line of a decoder exception, for one-line messages."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class Decoder(Protocol):
    """An open audio file read block by block (what a decoder in :data:`DECODERS` returns)."""

    rate: int
    """Sample rate in Hz, as the file says."""
    channels: int
    """Channel count, as the file says."""
    frames: int | None
    """Length in frames as the header claims (None if unknown): only for progress, never for allocation."""

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames as float32 ``(n, channels)``; ``n == 0`` at the end."""

    def close(self) -> None:
        """Release the file."""


class SoundFileAudio:
    """:class:`Decoder` through libsndfile (wav, flac, ogg/opus, mp3, aiff, ...)."""

    def __init__(self, path: str | Path):
        self.path = path
        self._f = open_audio(path)
        self.rate, self.channels, self.frames = int(self._f.samplerate), int(self._f.channels), int(self._f.frames)
        self._buf: np.ndarray | None = None

    def read(self, frames: int) -> np.ndarray:
        """Next block into one reused buffer (a header claiming 2**36 frames allocates nothing more)."""
        if self._buf is None or len(self._buf) < frames:
            self._buf = np.empty((frames, self.channels), dtype=np.float32)
        try:
            return self._f.read(frames, dtype="float32", always_2d=True, out=self._buf[:frames])
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise UsageError(f"{self.path}: cannot decode audio ({decode_error(exc)})") from None

    def close(self) -> None:
        """Close the libsndfile handle."""
        self._f.close()


SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au",
                        ".caf", ".w64", ".rf64")
"""Extensions libsndfile decodes that a directory walk picks up."""

AV_EXTENSIONS = (".m4a", ".m4b", ".mp4", ".aac", ".alac", ".webm", ".mka", ".mkv", ".mov")
"""Extensions decoded in process by PyAV (FFmpeg's decoders): AAC and ALAC in MP4, raw ADTS AAC,
Matroska/WebM, and the sound of video files."""


def open_av(path: str | Path) -> Decoder:
    """:class:`Decoder` through PyAV (:class:`streamtag.decode.AvFile`; PyAV is loaded on first use)."""
    from .decode import AvFile

    return AvFile(path)


DECODERS: dict[str, Callable[[str | Path], Decoder]] = {
    **{ext: SoundFileAudio for ext in SOUNDFILE_EXTENSIONS}, **{ext: open_av for ext in AV_EXTENSIONS}}
"""Decoder per lower-case file extension; register another by adding entries."""


def open_decoder(path: str | Path) -> Decoder:
    """Open ``path`` with the decoder registered for its extension, and check its rate and channels.

    A file with another extension is tried with libsndfile, then with PyAV (anything FFmpeg decodes).
    A rate outside ``MIN_RATE..MAX_RATE`` or no channels is a :class:`UsageError`.
    """
    opener = DECODERS.get(Path(path).suffix.lower())
    if opener is not None:
        f = opener(path)
    else:
        try:
            f = SoundFileAudio(path)
        except UsageError as exc:
            if "cannot decode audio" not in str(exc):
                raise
            try:
                f = open_av(path)
            except UsageError:
                raise exc from None
    try:
        if not MIN_RATE <= f.rate <= MAX_RATE:
            raise UsageError(f"{path}: unsupported sample rate {f.rate} Hz (expected {MIN_RATE}..{MAX_RATE})")
        if f.channels < 1:
            raise UsageError(f"{path}: file says it has {f.channels} channels")
    except UsageError:
        f.close()
        raise
    return f


class MonoStream:
    """One file as model-rate mono float32 chunks, decoded and resampled block by block.

    Memory is bounded by :data:`BLOCK_SAMPLES` whatever the file's length or header. Samples are
    made safe by :func:`sanitize` (NaN/inf -> 0, beyond full scale -> clipped to +-1); the file is
    opened by :func:`open_decoder`. Use as a context manager (it closes the file).
    """

    def __init__(self, path: str | Path, rate: int):
        self.path = path
        self.file = open_decoder(path)
        self.rate = rate
        self.frames_read = 0
        """Source frames decoded so far."""

    @property
    def seconds_read(self) -> float:
        """Seconds of audio decoded so far."""
        return self.frames_read / self.file.rate

    def __enter__(self) -> "MonoStream":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def chunks(self) -> Iterator[np.ndarray]:
        """Model-rate mono chunks until the end (the last one flushes the resampler)."""
        block = max(1, BLOCK_SAMPLES // self.file.channels)
        rs = StreamResampler(self.file.rate, self.rate)
        while True:
            data = self.file.read(block)
            if not len(data):
                break
            self.frames_read += len(data)
            mono = to_mono(data)
            sanitize(mono)
            out = rs.process(mono)
            if len(out):
                yield out
        if not self.frames_read:
            raise UsageError(f"{self.path}: file holds no audio samples")
        tail = rs.process(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail


def load_mono(path: str | Path, rate: int) -> np.ndarray:
    """Decode ``path``, mix to mono and resample to ``rate``: the whole model-ready float32 signal."""
    with MonoStream(path, rate) as s:
        return np.concatenate(list(s.chunks()))
