"""Training data: discover GTZAN-layout folders, cache decoded audio, cut 3-s windows.

A data root holds ``<genre>/<file>`` (any format libsndfile reads) and optionally a
``tracks.csv`` with an ``artist_group`` or ``artist`` column. Several roots train together;
each is a *source*, and artist groups are namespaced by source so ids never collide.

Audio is decoded once through :func:`streamtag.audio.load_mono` (mono, soxr HQ: the runtime's
path) and cached as ``.npy`` files that are memory-mapped, so a full GTZAN never sits in RAM.
An undecodable file is an error (named in one line), never skipped silently: a training set
that quietly shrinks gives numbers nobody can reproduce.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from streamtag.audio import RESAMPLE_QUALITY, load_mono
from streamtag.errors import UsageError

from .augment import pitch_tempo_variants

log = logging.getLogger(__name__)

AUDIO_EXTS = frozenset(
    {f".{name.lower()}" for name in sf.available_formats()} | {".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".wave"}
)
"""File suffixes treated as audio (what libsndfile reads); other files in genre folders are ignored."""

GROUP_COLUMNS = ("artist_group", "artist")
"""``tracks.csv`` columns naming the artist (group), in order of preference."""


@dataclass(frozen=True)
class Track:
    """One labelled clip."""

    path: Path
    """Audio file."""
    genre: str
    """Label (the genre folder name)."""
    source: str
    """Name of the data root it came from."""
    group: str
    """Artist group, namespaced by source (``<source>:<id>``); a track without one is its own group."""
    key: str
    """``<genre>/<stem>``: the id used by split lists (extension-free)."""


@dataclass
class DataConfig:
    """How clips become model inputs."""

    sample_rate: int = 32000
    """Model rate; every clip is mixed to mono and soxr-resampled to it."""
    window_seconds: float = 3.0
    """Window length (must match the model's)."""
    hop_seconds: float = 1.5
    """Hop between evaluation windows."""
    train_crops_per_track: int = 4
    """Random crops drawn from each training track per epoch."""
    cache_dir: str = "cache"
    """Folder of decoded, resampled audio (``.npy``)."""
    pitch_semitones: tuple[float, ...] = ()
    """Offline pitch-shifted copies of each training clip (librosa, cached); each crop picks a version at random."""
    stretch_rates: tuple[float, ...] = ()
    """Offline time-stretched copies (rate > 1 is faster), used like ``pitch_semitones``."""

    @property
    def variants(self) -> tuple[str, ...]:
        """Training versions of a clip: ``""`` (the original), ``pitch<s>`` and ``stretch<r>``."""
        return ("", *(f"pitch{s:+g}" for s in self.pitch_semitones), *(f"stretch{r:g}" for r in self.stretch_rates))

    @property
    def window_samples(self) -> int:
        """Samples in one window at the model rate."""
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        """Samples between evaluation windows."""
        return max(1, int(round(self.hop_seconds * self.sample_rate)))


def _read_tracks_csv(root: Path) -> dict[str, dict[str, str]]:
    """Rows of ``root/tracks.csv`` keyed by their relative path (empty when absent)."""
    f = root / "tracks.csv"
    if not f.is_file():
        return {}
    try:
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{f}: unreadable tracks.csv ({exc})") from None
    if rows and "path" not in rows[0]:
        raise UsageError(f"{f}: tracks.csv needs a 'path' column")
    return {r["path"].strip(): r for r in rows}


def _source_names(roots: Sequence[Path]) -> list[str]:
    """Folder names, made unique with ``#2``, ``#3`` … suffixes."""
    names: list[str] = []
    for r in roots:
        base = r.name or str(r)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}#{n}"
        names.append(name)
    return names


def track_key(relpath: str | Path) -> str:
    """``genre/name`` of a relative path, with an audio extension (if any) dropped: ``blues/blues.00029``."""
    p = Path(str(relpath).strip())
    name = p.stem if p.suffix.lower() in AUDIO_EXTS else p.name
    return f"{p.parent.name}/{name}" if p.parent.name else name


def discover(roots: Sequence[str | Path], labels: Sequence[str] | None = None) -> list[Track]:
    """List every audio file under the GTZAN-layout ``roots``; raises :class:`UsageError` on a bad folder.

    ``labels``, when given (e.g. a pretrained model's), is the closed label set: a genre folder
    outside it is an error.
    """
    if not roots:
        raise UsageError("no data folder given (use --data DIR)")
    paths = [Path(r) for r in roots]
    tracks: list[Track] = []
    for root, source in zip(paths, _source_names(paths)):
        if not root.exists():
            raise UsageError(f"{root}: data folder not found")
        if not root.is_dir():
            raise UsageError(f"{root}: not a folder")
        meta = _read_tracks_csv(root)
        found = []
        for genre_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for f in sorted(genre_dir.iterdir()):
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in AUDIO_EXTS:
                    found.append(_make_track(root, source, genre_dir.name, f, meta))
        if not found:
            raise UsageError(f"{root}: no audio files in <genre>/<file> layout")
        tracks.extend(found)
    genres = sorted({t.genre for t in tracks})
    if len(genres) < 2:
        raise UsageError(f"only one genre found ({genres[0]}): a classifier needs at least two genre folders")
    if labels is not None:
        unknown = sorted(set(genres) - set(labels))
        if unknown:
            raise UsageError(f"unknown labels {', '.join(unknown)} (model labels: {', '.join(labels)})")
    return tracks


def _make_track(root: Path, source: str, genre: str, f: Path, meta: dict[str, dict[str, str]]) -> Track:
    rel = f"{genre}/{f.name}"
    row = meta.get(rel, {})
    csv_genre = (row.get("genre") or "").strip()
    if csv_genre and csv_genre != genre:
        raise UsageError(f"{root / rel}: tracks.csv says genre {csv_genre!r} but the file is in {genre!r}/")
    gid = next((row[c].strip() for c in GROUP_COLUMNS if (row.get(c) or "").strip()), None)
    key = track_key(rel)
    group = f"{source}:{gid}" if gid is not None else f"{source}:track:{key}"
    return Track(path=f, genre=genre, source=source, group=group, key=key)


def label_set(tracks: Sequence[Track]) -> tuple[str, ...]:
    """Sorted genres present in ``tracks``."""
    return tuple(sorted({t.genre for t in tracks}))


class AudioCache:
    """Decoded, resampled clips on disk as ``.npy``, read back memory-mapped."""

    def __init__(self, cache_dir: str | Path, sample_rate: int):
        self.dir = Path(cache_dir)
        self.sample_rate = int(sample_rate)

    def path_for(self, track: Track, variant: str = "") -> Path:
        """Cache file: hash of rate, resampler, absolute path, mtime, size (and variant)."""
        st = track.path.stat()
        ident = f"{self.sample_rate}|soxr-{RESAMPLE_QUALITY}|{track.path.resolve()}|{st.st_mtime_ns}|{st.st_size}"
        if variant:
            ident += f"|{variant}"
        return self.dir / f"{hashlib.sha1(ident.encode()).hexdigest()}.npy"

    def load(self, track: Track, variant: str = "") -> np.ndarray:
        """Mono float32 samples at :attr:`sample_rate` (memory-mapped; decoded on first use).

        ``variant``: ``pitch<semitones>`` or ``stretch<rate>`` for an offline-augmented copy.
        """
        p = self.path_for(track, variant)
        if not p.is_file():
            x = load_mono(track.path, self.sample_rate) if not variant else self._make_variant(track, variant)
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp.npy")  # concurrent runs may decode the same track
            np.save(tmp, x)
            tmp.replace(p)
        return np.load(p, mmap_mode="r")

    def _make_variant(self, track: Track, variant: str) -> np.ndarray:
        x = np.asarray(self.load(track))
        if variant.startswith("pitch"):
            return pitch_tempo_variants(x, self.sample_rate, semitones=(float(variant[5:]),))[0]
        if variant.startswith("stretch"):
            return pitch_tempo_variants(x, self.sample_rate, rates=(float(variant[7:]),))[0]
        raise ValueError(f"unknown audio variant {variant!r}")

    def prepare(self, tracks: Sequence[Track], variants: Sequence[str] = ("",)) -> list[int]:
        """Decode (and make the variants of) every uncached track now; returns each original's length."""
        for v in variants:
            if v:
                for t in tracks:
                    self.load(t, v)
        return [int(self.load(t).shape[0]) for t in tracks]


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows covering the whole clip; the last one ends flush with it (one window if shorter)."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] != n_samples - window:
        starts.append(n_samples - window)
    return starts


def _crop(x: np.ndarray, start: int, window: int) -> np.ndarray:
    """``window`` samples from ``start``, zero-padded past the end."""
    seg = np.zeros(window, dtype=np.float32)
    part = np.asarray(x[start:start + window], dtype=np.float32)
    seg[: part.shape[0]] = part
    return seg


class WindowDataset(Dataset):
    """Windows of tracks as ``(wave (window_samples,), label, track_index)``.

    ``train=True``: ``train_crops_per_track`` random crops (random time shift) per track per
    pass, each from a random version of the clip (see :attr:`DataConfig.variants`); otherwise
    every window of the original at the configured hop, covering all of each clip.
    """

    def __init__(self, tracks: Sequence[Track], labels: Sequence[str], cache: AudioCache, cfg: DataConfig,
                 train: bool, seed: int = 0):
        if cache.sample_rate != cfg.sample_rate:
            raise ValueError("cache and data config disagree on the sample rate")
        self.tracks = list(tracks)
        self.label_index = {g: i for i, g in enumerate(labels)}
        missing = sorted({t.genre for t in self.tracks} - set(self.label_index))
        if missing:
            raise UsageError(f"unknown labels {', '.join(missing)} (model labels: {', '.join(labels)})")
        self.cache, self.cfg, self.train = cache, cfg, train
        self.variants = cfg.variants if train else ("",)
        self.lengths = cache.prepare(self.tracks, self.variants)
        self.rng = np.random.default_rng(seed)
        if train:
            self.items = [(i, -1) for i in range(len(self.tracks)) for _ in range(cfg.train_crops_per_track)]
        else:
            self.items = [(i, s) for i, n in enumerate(self.lengths)
                          for s in window_starts(n, cfg.window_samples, cfg.hop_samples)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int, int]:
        ti, start = self.items[idx]
        w = self.cfg.window_samples
        if start >= 0:
            x = self.cache.load(self.tracks[ti])
        else:  # training: a random version of the clip, a random crop of it
            variant = self.variants[int(self.rng.integers(len(self.variants)))] if len(self.variants) > 1 else ""
            x = self.cache.load(self.tracks[ti], variant)
            start = int(self.rng.integers(0, max(1, x.shape[0] - w + 1)))
        return torch.from_numpy(_crop(x, start, w)), self.label_index[self.tracks[ti].genre], ti


def make_loader(dataset: Dataset, batch_size: int, train: bool, seed: int = 0) -> DataLoader:
    """Single-process loader (data are memory-mapped; 2 shared cores gain nothing from workers)."""
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=False, generator=gen)
