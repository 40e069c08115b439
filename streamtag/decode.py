"""In-process decoding with PyAV (FFmpeg's libraries as a wheel): what libsndfile cannot read.

:class:`AvDecoder` decodes a file path or a readable byte stream (an HTTP body, see
:mod:`streamtag.icy`) into float32 ``(frames, channels)`` blocks at one fixed rate: m4a/AAC, ALAC,
Opus or Vorbis in any container, MP3 streams, the audio track of a video file. No ``ffmpeg``
binary is involved. :class:`AvFile` is the :class:`streamtag.audio.Decoder` for files (registered in
:data:`streamtag.audio.DECODERS` for the extensions libsndfile cannot read). Mixing to mono and
resampling to the model's rate stay in :mod:`streamtag.audio` (soxr), as for every other input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Iterator

import av
import numpy as np

from .audio import regular_file
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

    ``rate`` and ``channels`` are those of the first decoded audio (decoded on opening: a header may
    state another rate, as HE-AAC's does); later frames in another rate or layout (a chained Ogg stream,
    HE-AAC switching) are converted to them by FFmpeg's resampler.
    Raises :class:`UsageError` when the input is not decodable audio. Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, source: str | Path | BinaryIO, name: str | None = None, fmt: str | None = None):
        self.name = name or str(source)
        is_path = isinstance(source, (str, Path))
        options = {} if is_path else {"probesize": str(PROBE_BYTES), "analyzeduration": "0"}
        try:
            self._container = av.open(str(source) if is_path else source, mode="r", format=fmt, options=options)
        except (av.FFmpegError, UnicodeError, ValueError) as exc:
            raise UsageError(f"{self.name}: cannot decode audio ({av_error(exc)})") from None
        audio = self._container.streams.audio
        if not audio:
            self.close()
            raise UsageError(f"{self.name}: no audio stream")
        self._stream = audio[0]
        self._stream.thread_type = "AUTO"
        self.codec = self._stream.codec_context.name
        self.rate = self.channels = 0  # set by the first decoded frame
        self._resampler: av.AudioResampler | None = None
        self._pending = self._decode()
        try:
            self._first: np.ndarray | None = next(self._pending, None)
        except BaseException:
            self.close()
            raise
        if self._first is None:
            self.close()
            raise UsageError(f"{self.name}: holds no audio samples")

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
        yield from self._pending

    def close(self) -> None:
        """Release the container."""
        self._container.close()

    def __enter__(self) -> AvDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AvFile:
    """A file through PyAV as a :class:`streamtag.audio.Decoder` (``rate``, ``channels``, ``frames``,
    ``read``, ``close``): what :data:`streamtag.audio.DECODERS` opens m4a/AAC, ALAC and video files with."""

    def __init__(self, path: str | Path):
        self.path = path
        self._dec = AvDecoder(os.fsdecode(regular_file(path)), str(path))
        self.rate, self.channels = self._dec.rate, self._dec.channels
        duration = self._dec.duration
        self.frames: int | None = int(round(duration * self.rate)) if duration else None
        """Length the container states (for progress only), or None."""
        self._blocks = self._dec.blocks()
        self._rest = np.zeros((0, self.channels), dtype=np.float32)

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` frames as float32 ``(n, channels)`` (fewer only at the end); ``n == 0`` at the end."""
        parts, have = [self._rest], len(self._rest)
        while have < frames and (block := next(self._blocks, None)) is not None:
            parts.append(block)
            have += len(block)
        data = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out, self._rest = data[:frames], data[frames:]
        return out

    def close(self) -> None:
        """Release the container."""
        self._dec.close()
