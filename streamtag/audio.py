"""Decoding, mono mixing and resampling: the one audio path shared by training and runtime.

Every sample a model sees, in training or live, is mixed to mono by averaging channels and
resampled with soxr at HQ quality, so the two can never disagree about the resampler. Files are
decoded block by block (:class:`MonoStream`): memory stays bounded whatever a file's length or
what its header claims; :func:`load_mono` is the same stream gathered into one array.

Decoders are pluggable: :data:`DECODERS` maps a file extension to the function that opens it as
an :class:`AudioFile`; any other extension goes to libsndfile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import soundfile as sf
import soxr

from .errors import UsageError

RESAMPLE_QUALITY = "HQ"
"""soxr quality used everywhere (training caches and live streams alike)."""

RATE_RANGE = (1000, 768000)
"""Source sample rates a file may have (Hz); anything else is refused before resampling."""

BLOCK_SAMPLES = 1 << 18
"""Most samples (all channels together) decoded in one block: the bound on a decode buffer."""


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of a ``(frames, channels)`` or ``(frames,)`` array to float32 mono."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    return x.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole mono signal with soxr (HQ); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    if from_rate == to_rate or x.size == 0:
        return x
    return soxr.resample(x, from_rate, to_rate, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)


class StreamResampler:
    """Chunked soxr resampler for live streams: same filter as :func:`resample`."""

    def __init__(self, from_rate: int, to_rate: int):
        self.passthrough = from_rate == to_rate
        self._rs = None if self.passthrough else soxr.ResampleStream(
            from_rate, to_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk of mono float32 samples; ``last`` flushes the filter tail."""
        if self.passthrough:
            return mono
        return self._rs.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)


def open_audio(path: str | Path) -> sf.SoundFile:
    """Open any file libsndfile decodes for block-wise reading (the caller closes it).

    Raises :class:`UsageError` with a one-line message for missing, unreadable or empty files.
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, not an audio file")
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UsageError(f"{path}: cannot decode audio ({decode_error(exc)})") from None
    if f.frames == 0:
        f.close()
        raise UsageError(f"{path}: file holds no audio samples")
    return f


def decode_error(exc: Exception) -> str:
    """First line of a decoder exception, for one-line messages."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class AudioFile(Protocol):
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
    """:class:`AudioFile` through libsndfile (wav, flac, ogg/opus, mp3, aiff, ...)."""

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

DECODERS: dict[str, Callable[[str | Path], AudioFile]] = {ext: SoundFileAudio for ext in SOUNDFILE_EXTENSIONS}
"""Decoder per lower-case file extension; register another (e.g. PyAV for ``.m4a``) by adding entries."""


def open_decoder(path: str | Path) -> AudioFile:
    """Open ``path`` with the decoder registered for its extension (libsndfile for unknown ones)."""
    return DECODERS.get(Path(path).suffix.lower(), SoundFileAudio)(path)


class MonoStream:
    """One file as model-rate mono float32 chunks, decoded and resampled block by block.

    Memory is bounded by :data:`BLOCK_SAMPLES` whatever the file's length or header. Non-finite
    samples (NaN/inf) are replaced by 0; a rate outside :data:`RATE_RANGE` is a :class:`UsageError`.
    Use as a context manager (it closes the file).
    """

    def __init__(self, path: str | Path, rate: int):
        self.path = path
        self.file = open_decoder(path)
        try:
            lo, hi = RATE_RANGE
            if not lo <= self.file.rate <= hi:
                raise UsageError(f"{path}: unsupported sample rate {self.file.rate} Hz (expected {lo}..{hi})")
            if self.file.channels < 1:
                raise UsageError(f"{path}: file says it has {self.file.channels} channels")
        except UsageError:
            self.file.close()
            raise
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
            if not np.isfinite(mono).all():
                mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
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
