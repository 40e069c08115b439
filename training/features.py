"""Cached window embeddings of frozen backbones: computed once, shared by every head and fold.

Each clip is cut into 3-s windows at a fixed hop (the *clean* view, for validation and testing)
and into ``views`` augmented versions for training (jittered window starts, gain and noise on the
wave, SpecAugment masks on each backbone's own spectrogram). The window plan and the wave
augmentation depend only on the clip and the view, never on the backbone, so row ``i`` of every
backbone's matrix is the same audio and the matrices can be concatenated. Each backbone's matrix is
cached on disk (``features-<backbone>-<hash>.npy``), keyed by its weights, front end, the clips
(path, size, mtime), the plan and the augmentation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .augment import AugmentConfig, spec_augment, wave_augment
from .backbones import RATE, Backbone
from .data import AudioCache, Track, window_starts
from .export import sha256

log = logging.getLogger(__name__)

WINDOW_SECONDS = 3.0
BATCH = 4
"""Windows per backbone call (larger batches are slower for musicnn's convolutions on CPU)."""
VERSION = 1
VIEWS = ("clean", "augmented", "all")
"""Which windows a head trains on: the clean hop grid, the augmented views, or both."""
"""Bumped when the way features are computed changes (invalidates caches)."""


@dataclass
class FeatureConfig:
    """The window plan and augmentation of the cached features."""

    views: int = 5
    """Augmented views per window position (besides the clean one)."""
    hop_seconds: float = 1.5
    """Hop between a clip's windows."""
    seed: int = 0
    """Seed of the jitter and augmentation."""
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        gain_db=6.0, noise_prob=0.3, time_masks=2, time_mask_frac=0.1, freq_masks=2, freq_mask_frac=0.15,
        mixup_alpha=0.0, mixup_prob=0.0))
    """Wave and spectrogram augmentation of the training views (mixup belongs to the head's trainer)."""


@dataclass
class Features:
    """Aligned window embeddings of several backbones over a track list."""

    x: dict[str, np.ndarray]
    """Backbone name -> ``(N, dim)`` float32; row ``i`` is the same window for every backbone."""
    label: np.ndarray
    """``(N,)`` class index."""
    track: np.ndarray
    """``(N,)`` index into the track list."""
    view: np.ndarray
    """``(N,)`` 0 = clean, 1.. = augmented."""

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        """``(N, sum of dims)``: the named backbones' embeddings side by side, in ``names`` order."""
        return np.concatenate([self.x[n] for n in names], axis=1)

    def select(self, names: Sequence[str], tracks: Sequence[int], views: str = "clean") -> TensorDataset:
        """``(x, label, track)`` of the given tracks' windows: ``clean``, ``augmented`` or ``all`` views."""
        if views not in VIEWS:
            raise ValueError(f"views must be one of {', '.join(VIEWS)}, not {views!r}")
        m = np.isin(self.track, np.asarray(tracks))
        if views != "all":
            m &= (self.view == 0) if views == "clean" else (self.view > 0)
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(self.matrix(names)[m])),
                             torch.from_numpy(self.label[m]), torch.from_numpy(self.track[m]))


    def track_means(self, names: Sequence[str], tracks: Sequence[int], views: str = "clean") -> TensorDataset:
        """``(x, label, track)``: one row per selected view of each given track, the mean of its windows."""
        m = np.isin(self.track, np.asarray(tracks))
        if views != "all":
            m &= (self.view == 0) if views == "clean" else (self.view > 0)
        x, track, view = self.matrix(names)[m], self.track[m], self.view[m]
        keys, inverse = np.unique(track * 1000 + view, return_inverse=True)
        sums = np.zeros((len(keys), x.shape[1]), np.float64)
        np.add.at(sums, inverse, x)
        means = (sums / np.bincount(inverse)[:, None]).astype(np.float32)
        first = np.unique(inverse, return_index=True)[1]
        return TensorDataset(torch.from_numpy(means), torch.from_numpy(self.label[m][first]),
                             torch.from_numpy(track[first]))


def _seed(cfg: FeatureConfig, track: Track, view: int, salt: str = "") -> int:
    return zlib.crc32(f"{cfg.seed}|{track.source}|{track.key}|{view}|{salt}".encode())


def window_plan(tracks: Sequence[Track], lengths: Sequence[int], cfg: FeatureConfig) -> list[list[np.ndarray]]:
    """Window starts (samples at :data:`RATE`) per track and view; view 0 is the clean hop grid."""
    w, hop = int(WINDOW_SECONDS * RATE), int(round(cfg.hop_seconds * RATE))
    plan = []
    for t, n in zip(tracks, lengths):
        base = np.array(window_starts(max(n, w), w, hop))
        views = [base]
        for v in range(1, cfg.views + 1):
            rng = np.random.default_rng(_seed(cfg, t, v))
            views.append(np.clip(base + rng.integers(-hop // 2, hop // 2 + 1, len(base)), 0, max(n, w) - w))
        plan.append(views)
    return plan


def _cache_path(cache_dir: Path, backbone: Backbone, tracks: Sequence[Track], cfg: FeatureConfig) -> Path:
    ident = json.dumps({"version": VERSION, "backbone": backbone.name, "weights": sha256(backbone.weights),
                        "frontend": asdict(backbone.frontend_params), "config": asdict(cfg),
                        "tracks": [f"{t.path.resolve()}|{t.path.stat().st_size}|{t.path.stat().st_mtime_ns}"
                                   for t in tracks]}, sort_keys=True)
    return cache_dir / f"features-{backbone.name}-{hashlib.sha1(ident.encode()).hexdigest()[:16]}.npy"


@torch.no_grad()
def embed_windows(backbone: Backbone, tracks: Sequence[Track], plan: Sequence[Sequence[np.ndarray]],
                  audio: AudioCache, cfg: FeatureConfig) -> np.ndarray:
    """Every planned window of every track through ``backbone`` (augmented views augmented): ``(N, dim)``."""
    w = int(WINDOW_SECONDS * RATE)
    out, t0 = [], time.perf_counter()
    for ti, (track, views) in enumerate(zip(tracks, plan)):
        wave = np.asarray(audio.load(track), dtype=np.float32)
        if len(wave) < w:
            wave = np.pad(wave, (0, w - len(wave)))
        for v, starts in enumerate(views):
            batch = torch.from_numpy(np.stack([wave[s:s + w] for s in starts]))
            wave_gen = torch.Generator().manual_seed(_seed(cfg, track, v))
            spec_gen = torch.Generator().manual_seed(_seed(cfg, track, v, backbone.name))
            if v:
                batch = wave_augment(batch, cfg.augment, wave_gen)
            for chunk in batch.split(BATCH):
                spec = backbone.frontend(chunk)
                if v:
                    spec = spec_augment(spec, cfg.augment, spec_gen)
                out.append(backbone.embed(spec).numpy())
        if (ti + 1) % 25 == 0 or ti + 1 == len(tracks):
            log.info("%s: embedded %d/%d tracks (%.0f s)", backbone.name, ti + 1, len(tracks),
                     time.perf_counter() - t0)
    return np.concatenate(out).astype(np.float32)


def load_features(backbones: Sequence[Backbone], tracks: Sequence[Track], labels: Sequence[str],
                  cfg: FeatureConfig, cache_dir: str | Path = "cache") -> Features:
    """Embeddings of every window of every track for each backbone (computed once, then read from the cache)."""
    cache_dir = Path(cache_dir)
    audio = AudioCache(cache_dir, RATE)
    plan = window_plan(tracks, audio.prepare(tracks), cfg)
    label, track, view = [], [], []
    for ti, (t, views) in enumerate(zip(tracks, plan)):
        for v, starts in enumerate(views):
            label.append(np.full(len(starts), labels.index(t.genre)))
            track.append(np.full(len(starts), ti))
            view.append(np.full(len(starts), v))
    x = {}
    for b in backbones:
        path = _cache_path(cache_dir, b, tracks, cfg)
        if not path.is_file():
            emb = embed_windows(b, tracks, plan, audio, cfg)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, emb)
            tmp.replace(path)
        x[b.name] = np.load(path, mmap_mode="r")
    return Features(x, np.concatenate(label).astype(np.int64), np.concatenate(track).astype(np.int64),
                    np.concatenate(view).astype(np.int64))
