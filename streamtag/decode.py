"""In-process decoding with PyAV (FFmpeg's libraries as a wheel): what libsndfile cannot read.

:class:`AvDecoder` decodes a file path or a readable byte stream (an HTTP body, see
:mod:`streamtag.icy`) into float32 ``(frames, channels)`` blocks at one fixed rate: m4a/AAC, ALAC,
Opus or Vorbis in any container, MP3 streams, the audio track of a video file. No ``ffmpeg``
binary is involved. :func:`read_file` is the whole-file convenience. Mixing to mono and
resampling to the model's rate stay in :mod:`streamtag.audio` (soxr), as for every other input.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Iterator

import av
import numpy as np

from .errors import UsageError

MAX_BAD_PACKETS = 200
"""Consecutive undecodable packets after which a stream counts as garbage (single bad ones are skipped)."""
PROBE_BYTES = 65536
"""Bytes FFmpeg may read to recognise a byte stream's format (small: live streams arrive in real time)."""

FORMAT_BY_CONTENT_TYPE = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/aac": "aac", "audio/aacp": "aac",
                          "audio/x-aac": "aac", "application/ogg": "ogg", "audio/ogg": "ogg", "audio/opus": "ogg",
                          "audio/flac": "flac", "audio/x-flac": "flac", "audio/wav": "wav", "audio/x-wav": "wav",
                          "audio/webm": "webm"}
"""HTTP Content-Type -> FFmpeg demuxer, so a live stream need not be probed."""


def av_error(exc: BaseException) -> str:
    """One-line reason from a PyAV/FFmpeg exception."""
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(msg).splitlines()[0][:200]


class AvDecoder:
    """Decode the first audio stream of ``source`` (a path, or a binary stream read front to back).

    ``rate`` and ``channels`` are those of the first decoded audio; later frames in another rate or
    layout (a chained Ogg stream, HE-AAC switching) are converted to them by FFmpeg's resampler.
    Raises :class:`UsageError` when the input is not decodable audio. Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, source: str | Path | BinaryIO, name: str | None = None, fmt: str | None = None):
        self.name = name or str(source)
        is_path = isinstance(source, (str, Path))
        options = {} if is_path else {"probesize": str(PROBE_BYTES), "analyzeduration": "0"}
        try:
            self._container = av.open(str(source) if is_path else source, mode="r", format=fmt, options=options)
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"{self.name}: cannot decode audio ({av_error(exc)})") from None
        audio = self._container.streams.audio
        if not audio:
            self.close()
            raise UsageError(f"{self.name}: no audio stream")
        self._stream = audio[0]
        self._stream.thread_type = "AUTO"
        self.codec = self._stream.codec_context.name
        self.rate = int(self._stream.rate or 0)
        self.channels = int(self._stream.channels or 0)
        self._resampler: av.AudioResampler | None = None
        self._pending: Iterator[np.ndarray] | None = None
        if not self.rate or not self.channels:  # unknown until the first frame (some live streams)
            self._pending = self._decode()
            first = next(self._pending, None)
            if first is None:
                self.close()
                raise UsageError(f"{self.name}: holds no audio samples")
            self._first: np.ndarray | None = first
        else:
            self._first = None

    @property
    def duration(self) -> float | None:
        """Container duration in seconds, when the container states one."""
        d = self._container.duration
        return None if d is None else d / 1e6

    def _convert(self, frame: av.AudioFrame) -> list[np.ndarray]:
        if self._resampler is None:
            self.rate, self.channels = frame.sample_rate, frame.layout.nb_channels
            self._resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=frame.sample_rate)
        return [np.ascontiguousarray(f.to_ndarray().T, dtype=np.float32) for f in self._resampler.resample(frame)]

    def _decode(self) -> Iterator[np.ndarray]:
        bad = 0
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except (av.InvalidDataError, av.error.PatchWelcomeError):
                    bad += 1
                    if bad > MAX_BAD_PACKETS:
                        raise UsageError(f"{self.name}: cannot decode audio ({bad} corrupt packets in a row)") from None
                    continue
                bad = 0 if frames else bad
                for frame in frames:
                    yield from self._convert(frame)
            if self._resampler is not None:
                for f in self._resampler.resample(None):
                    yield np.ascontiguousarray(f.to_ndarray().T, dtype=np.float32)
        except av.EOFError:
            return
        except av.FFmpegError as exc:
            raise UsageError(f"{self.name}: cannot decode audio ({av_error(exc)})") from None

    def blocks(self) -> Iterator[np.ndarray]:
        """Decoded audio as float32 ``(frames, channels)`` arrays, in order, until the end of the input.

        Exceptions raised by a byte stream's ``read`` (a stall, a dropped connection) propagate as they are.
        """
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from (self._pending if self._pending is not None else self._decode())

    def close(self) -> None:
        """Release the container."""
        self._container.close()

    def __enter__(self) -> AvDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file with PyAV: float32 ``(frames, channels)`` and its rate.

    Raises :class:`UsageError` (one line) for a missing, undecodable or empty file.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file" if not p.exists() else f"{path}: not a regular file")
    with AvDecoder(p, str(path)) as dec:
        parts = list(dec.blocks())
        channels = dec.channels
        rate = dec.rate
    if not parts or not sum(len(b) for b in parts):
        raise UsageError(f"{path}: file holds no audio samples")
    return np.concatenate(parts).reshape(-1, channels), rate
