"""Decoding, mono mixing and resampling: the one audio path shared by training and runtime.

Every sample a model sees, in training or live, is mixed to mono by averaging channels and
resampled with soxr at HQ quality, so the two can never disagree about the resampler.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import UsageError

RESAMPLE_QUALITY = "HQ"
"""soxr quality used everywhere (training caches and live streams alike)."""


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


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read any file libsndfile decodes; returns ``(frames, channels)`` float32 and its rate.

    Raises :class:`UsageError` with a one-line message for missing, unreadable or empty files.
    """
    with open_audio(path) as f:
        try:
            data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: cannot decode audio ({decode_error(exc)})") from None
        rate = f.samplerate
    if data.shape[0] == 0:
        raise UsageError(f"{path}: file holds no audio samples")
    return data, int(rate)


def load_mono(path: str | Path, rate: int) -> np.ndarray:
    """Decode ``path``, mix to mono and resample to ``rate``: the model-ready float32 signal.

    Non-finite samples (NaN/inf) are replaced by 0 so they cannot poison a window.
    """
    data, src_rate = read_audio(path)
    mono = to_mono(data)
    if not np.isfinite(mono).all():
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return resample(mono, src_rate, rate)
