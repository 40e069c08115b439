"""Transfer learning for ``mobilenet``: the AudioSet net's MLP head trained on cached embeddings.

The AudioSet backbone stays frozen, so each window's 384-d embedding is computed once: a clean
view (windows at a fixed hop, for validation and testing) and ``views`` augmented ones (jittered
window starts, gain/noise on the wave, SpecAugment masks on the log-mel) for training. The head
(``Linear-Hardswish-Dropout-Linear``) starts from the AudioSet classifier rows of the genres and is
pulled back toward them by an L2-SP penalty, so genres or artists the data lack keep the AudioSet
answer; the rows of genres the data know from too few artists (``protect_below``) are not trained
at all. Training runs through :class:`training.trainer.Trainer`, scoring through
:func:`training.evaluate.evaluate`.

``python -m training.transfer cv --data DIR ...`` cross-validates (artist-grouped folds) against
the zero-shot head; ``holdout --test-source NAME`` trains on the other sources and tests on that
one; ``select --cv RUN ...`` chooses among the configs of several ``cv`` runs on their validation
folds only (writes ``selection.json``); ``final --data DIR ... --selection FILE`` trains the chosen
config on all clips and exports ``models/mobilenet.onnx``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from streamtag.errors import StreamtagError, UsageError

from .augment import AugmentConfig, spec_augment, wave_augment
from .data import AudioCache, Track, discover, window_starts
from .evaluate import Predictions, evaluate, predict, scores, track_votes, write_json
from .export import export_onnx, sha256
from .models import GenreNet, build_model
from .models.mobilenet import GTZAN_GENRES as GENRES
from .models.mobilenet import weights_path
from .splits import Split, all_tracks_split, group_kfold
from .trainer import TrainConfig, Trainer

log = logging.getLogger("training.transfer")  # not __name__: also run as __main__

EMBED_BATCH = 64
TRAIN_PARTS = ("head", "last", "bias")


@dataclass
class TransferConfig:
    """Embedding views and head training for the ``mobilenet`` transfer."""

    views: int = 6
    """Augmented embedding views per window position (besides the clean one)."""
    hop_seconds: float = 1.5
    """Hop between the windows of a clip."""
    train_part: str = "head"
    """``head``: both Linear layers; ``last``: only the output layer; ``bias``: only its biases (calibration)."""
    l2sp: float = 0.1
    """Strength of the pull toward the AudioSet weights: ``l2sp * sum((w - w0)^2)``."""
    balance: bool = True
    """Class-balanced sampling of training windows."""
    protect_below: int = 1
    """Leave classes whose training tracks come from fewer than this many artists out of the training
    softmax, so their output rows keep their AudioSet values and the others are not trained to beat
    them. 1 protects only classes with no training data (in a CV fold, a one-artist genre whose artist
    is tested); a larger value also keeps genres the data know from one or a few artists only (a row
    trained on one artist learns that artist, not the genre); 0 trains every row."""
    protect_rival: bool = False
    """Keep the protected rows in the training softmax as fixed rivals (no gradient to them), so the
    trained rows learn to give way on those genres' windows; False takes them out of it."""
    folds: int = 5
    seed: int = 0
    """Seed of the augmented views and of training."""
    fold_seed: int = 0
    """Seed of the artist-grouped fold assignment (CV only)."""
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        gain_db=6.0, noise_prob=0.3, time_masks=2, time_mask_frac=0.1, freq_masks=2, freq_mask_frac=0.15,
        mixup_alpha=0.0))
    """Wave and spectrogram augmentation of the training views (mixup is applied to embeddings by the trainer)."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=30, batch_size=256, lr=1e-3, weight_decay=0.0, patience=8, grad_clip=5.0, device="cpu"))


@dataclass
class Embeddings:
    """Backbone embeddings of windows of a track list."""

    x: np.ndarray
    """``(N, D)`` float32."""
    label: np.ndarray
    """``(N,)`` class index."""
    track: np.ndarray
    """``(N,)`` index into the track list."""
    view: np.ndarray
    """``(N,)`` 0 = clean, 1.. = augmented."""

    def select(self, tracks: Sequence[int], clean: bool) -> TensorDataset:
        """``(x, label, track)`` of the given tracks: the clean view, or every augmented view."""
        m = np.isin(self.track, np.asarray(tracks)) & ((self.view == 0) if clean else (self.view > 0))
        return TensorDataset(torch.from_numpy(self.x[m]), torch.from_numpy(self.label[m]),
                             torch.from_numpy(self.track[m]))


def _cache_file(cache_dir: Path, tracks: Sequence[Track], cfg: TransferConfig) -> Path:
    ident = json.dumps({"tracks": [f"{t.path.resolve()}|{t.path.stat().st_mtime_ns}" for t in tracks],
                        "weights": sha256(weights_path()), "views": cfg.views, "hop": cfg.hop_seconds,
                        "augment": asdict(replace(cfg.augment, mixup_alpha=0.0, mixup_prob=0.0)),  # mixup: not here
                        "seed": cfg.seed}, sort_keys=True)
    return cache_dir / f"embeddings-{hashlib.sha1(ident.encode()).hexdigest()[:16]}.npz"


@torch.no_grad()
def embed_tracks(model: GenreNet, tracks: Sequence[Track], labels: Sequence[str], cfg: TransferConfig,
                 cache_dir: str | Path = "cache") -> Embeddings:
    """Embeddings of every window of every track, clean and ``cfg.views`` augmented (cached on disk)."""
    cache_dir = Path(cache_dir)
    path = _cache_file(cache_dir, tracks, cfg)
    if path.is_file():
        with np.load(path) as z:
            return Embeddings(z["x"], z["label"], z["track"], z["view"])
    audio = AudioCache(cache_dir, model.frontend_params.sample_rate)
    w, hop = model.window_samples, int(round(cfg.hop_seconds * model.frontend_params.sample_rate))
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model.eval()
    out: dict[str, list] = {"x": [], "label": [], "track": [], "view": []}
    t0 = time.perf_counter()
    for ti, track in enumerate(tracks):
        wave = np.asarray(audio.load(track), dtype=np.float32)
        if len(wave) < w:
            wave = np.pad(wave, (0, w - len(wave)))
        base = np.array(window_starts(len(wave), w, hop))
        for view in range(cfg.views + 1):
            starts = base if view == 0 else np.clip(base + rng.integers(-hop // 2, hop // 2 + 1, len(base)), 0,
                                                    len(wave) - w)
            batch = torch.from_numpy(np.stack([wave[s:s + w] for s in starts]))
            embs = []
            for chunk in batch.split(EMBED_BATCH):
                if view:
                    spec = spec_augment(model.frontend(wave_augment(chunk, cfg.augment, gen)), cfg.augment, gen)
                else:
                    spec = model.frontend(chunk)
                embs.append(model.backbone.embed(spec))
            out["x"].append(torch.cat(embs).numpy())
            out["label"].append(np.full(len(starts), labels.index(track.genre)))
            out["track"].append(np.full(len(starts), ti))
            out["view"].append(np.full(len(starts), view))
        if (ti + 1) % 20 == 0:
            log.info("embedded %d/%d tracks (%.0f s)", ti + 1, len(tracks), time.perf_counter() - t0)
    emb = Embeddings(np.concatenate(out["x"]).astype(np.float32), np.concatenate(out["label"]).astype(np.int64),
                     np.concatenate(out["track"]).astype(np.int64), np.concatenate(out["view"]).astype(np.int64))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # concurrent runs may embed the same data
    np.savez(tmp, x=emb.x, label=emb.label, track=emb.track, view=emb.view)
    tmp.replace(path)
    return emb


def exclude_classes(logits: torch.Tensor, excluded: torch.Tensor, margin: float = 30.0) -> torch.Tensor:
    """Take the ``excluded`` classes out of a softmax cross-entropy: no gradient to them, no rivalry.

    Their logits become the log-sum-exp of the others minus ``margin``, so their log-probabilities
    are constant: any target mass on them (label smoothing spreads some over every class) adds a
    constant to the loss instead of pushing every other logit down, and the gradient is that of a
    softmax over the remaining classes alone.
    """
    floor = logits[:, ~excluded].logsumexp(dim=1, keepdim=True) - margin
    return torch.where(excluded, floor, logits)


class EmbeddingHead(nn.Module):
    """A trainable copy of a mobilenet GenreNet's MLP head, acting on embeddings.

    Rows marked in ``frozen`` (protected genres) always give the AudioSet head's own logits, read from
    the AudioSet hidden layer even where the trained copy's hidden layer has moved.
    """

    def __init__(self, model: GenreNet, train_part: str = "head"):
        super().__init__()
        if train_part not in TRAIN_PARTS:
            raise ValueError(f"train_part must be one of {', '.join(TRAIN_PARTS)}, not {train_part!r}")
        self.labels = model.labels
        self.mlp = copy.deepcopy(model.backbone.classifier[2:])
        if train_part in ("last", "bias"):
            self.mlp[0].requires_grad_(False)
        if train_part == "bias":
            self.mlp[3].weight.requires_grad_(False)
        self.start = [p.detach().clone() for p in self.mlp.parameters()]
        self.register_buffer("frozen", torch.zeros(len(self.labels), dtype=torch.bool), persistent=False)
        self.rival = False

    def audioset_logits(self, emb: torch.Tensor) -> torch.Tensor:
        """The untrained head's logits (no dropout)."""
        w1, b1, w2, b2 = self.start
        return nn.functional.linear(nn.functional.hardswish(nn.functional.linear(emb, w1, b1)), w2, b2)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(emb)
        if self.frozen.any():
            logits = torch.where(self.frozen, self.audioset_logits(emb), logits)
            if self.training and not self.rival:
                logits = exclude_classes(logits, self.frozen)
        return logits

    def l2sp(self, strength: float) -> torch.Tensor:
        """``strength * sum((w - w_start)^2)`` over the trainable weights."""
        return strength * sum(((p - p0) ** 2).sum() for p, p0 in zip(self.mlp.parameters(), self.start)
                              if p.requires_grad)

    def install(self, model: GenreNet) -> None:
        """Put the trained head into ``model``'s classifier, computing what :meth:`forward` computes.

        When the hidden layer was trained and some rows are protected, the hidden layer becomes the
        trained and the AudioSet one side by side (twice as wide) and each output row reads its own half.
        """
        first, last = self.mlp[0], self.mlp[3]
        w1, b1, w2, b2 = self.start
        if self.frozen.any() and not torch.equal(first.weight, w1):
            n = first.out_features
            first = nn.Linear(first.in_features, 2 * n)
            last = nn.Linear(2 * n, len(self.labels))
            with torch.no_grad():
                first.weight.copy_(torch.cat([self.mlp[0].weight, w1]))
                first.bias.copy_(torch.cat([self.mlp[0].bias, b1]))
                last.weight.zero_()
                last.weight[~self.frozen, :n] = self.mlp[3].weight[~self.frozen]
                last.weight[self.frozen, n:] = w2[self.frozen]
                last.bias.copy_(torch.where(self.frozen, b2, self.mlp[3].bias))
        else:
            first, last = copy.deepcopy(first), copy.deepcopy(last)
            with torch.no_grad():
                last.weight.copy_(torch.where(self.frozen[:, None], w2, last.weight))
                last.bias.copy_(torch.where(self.frozen, b2, last.bias))
        classifier = model.backbone.classifier
        classifier[2], classifier[5] = first.requires_grad_(True), last.requires_grad_(True)


def _train_loader(data: TensorDataset, cfg: TransferConfig, n_classes: int) -> DataLoader:
    gen = torch.Generator().manual_seed(cfg.seed)
    if not cfg.balance:
        return DataLoader(data, batch_size=cfg.train.batch_size, shuffle=True, generator=gen)
    y = data.tensors[1].numpy()
    counts = np.bincount(y, minlength=n_classes).astype(float)
    weights = torch.from_numpy(1.0 / counts[y])
    sampler = WeightedRandomSampler(weights, num_samples=len(y), replacement=True, generator=gen)
    return DataLoader(data, batch_size=cfg.train.batch_size, sampler=sampler, generator=gen)


def _eval_loader(data: TensorDataset) -> DataLoader:
    return DataLoader(data, batch_size=1024, shuffle=False)


def thin_classes(tracks: Sequence[Track], train: Sequence[int], labels: Sequence[str], min_artists: int) -> list[str]:
    """Labels whose tracks among ``train`` come from fewer than ``min_artists`` artists (groups)."""
    artists: dict[str, set[str]] = {label: set() for label in labels}
    for i in train:
        artists[tracks[i].genre].add(tracks[i].group)
    return [label for label in labels if len(artists[label]) < min_artists]


def fit_head(model: GenreNet, tracks: Sequence[Track], emb: Embeddings, split: Split, cfg: TransferConfig,
             run_dir: Path) -> tuple[EmbeddingHead, Any]:
    """Train a head on ``split.train``'s augmented views, early stopping on ``split.valid``'s clean windows."""
    torch.manual_seed(cfg.seed)
    head = EmbeddingHead(model, cfg.train_part)
    train = emb.select(split.train, clean=False)
    thin = thin_classes(tracks, split.train, model.labels, cfg.protect_below)
    head.frozen[:] = torch.tensor([label in thin for label in model.labels])
    head.rival = cfg.protect_rival
    if thin:
        log.info("%s: rows kept at AudioSet (fewer than %d training artists): %s", split.name, cfg.protect_below,
                 ", ".join(thin))
    trainer = Trainer(head, cfg.train, run_dir, cfg.augment.waveform_off(), n_classes=len(model.labels),
                      regulariser=lambda m: m.l2sp(cfg.l2sp))
    valid = _eval_loader(emb.select(split.valid, clean=True)) if split.valid else None
    result = trainer.fit(_train_loader(train, cfg, len(model.labels)), valid)
    return head, result


def _by_source(votes: dict[str, Sequence[int]], sources: Sequence[str]) -> dict[str, Any]:
    """Track accuracy, macro accuracy and per-class accuracy of soft votes, over all tracks and per source."""
    label, soft = np.asarray(votes["label"]), np.asarray(votes["soft"])
    src = np.asarray(sources)[np.asarray(votes["track"], dtype=np.int64)]
    out = {}
    for name in ["all", *sorted(set(src.tolist()))]:
        m = np.ones(len(src), bool) if name == "all" else src == name
        s = scores(label[m], soft[m], GENRES)
        out[name] = {"tracks": s["n"], "acc": s["acc"], "macro_acc": s["macro_recall"], "per_class": s["per_class_acc"]}
    return out


def macro_by_source(preds: Predictions, tracks: Sequence[Track]) -> dict[str, Any]:
    """Track-level (soft vote) accuracy and macro accuracy per source and over all."""
    return _by_source(_votes(preds), [t.source for t in tracks])


def _pool(parts: Sequence[Predictions]) -> Predictions:
    return Predictions(np.concatenate([p.logits for p in parts]), np.concatenate([p.labels for p in parts]),
                       np.concatenate([p.track_index for p in parts]))


def _votes(preds: Predictions) -> dict[str, list[int]]:
    """Track ids, true labels and soft-vote predictions (what model selection needs), JSON-ready."""
    v = track_votes(preds)
    return {"track": v["track"].tolist(), "label": v["labels"].tolist(), "soft": v["soft"].tolist()}


def _run_splits(model: GenreNet, tracks: Sequence[Track], emb: Embeddings, splits: Sequence[Split],
                cfg: TransferConfig, run_dir: Path, protocol: str) -> dict[str, Any]:
    """Train a head per split, score its valid and test tracks and the zero-shot head's; report -> ``cv.json``.

    Each fold keeps the track votes of both heads on its valid and test tracks (``votes``), so that
    :func:`select` can choose among configs on validation folds and score the choice on test folds.
    """
    zero_shot = EmbeddingHead(model)
    trained, untrained, folds = [], [], []
    for split in splits:
        head, result = fit_head(model, tracks, emb, split, cfg, run_dir / split.name)
        test = _eval_loader(emb.select(split.test, clean=True))
        trained.append(predict(head, test))
        untrained.append(predict(zero_shot, test))
        votes = {"test": {"transfer": _votes(trained[-1]), "zero_shot": _votes(untrained[-1])}}
        if split.valid:
            valid = _eval_loader(emb.select(split.valid, clean=True))
            votes["valid"] = {"transfer": _votes(predict(head, valid)), "zero_shot": _votes(predict(zero_shot, valid))}
        fold = {"split": split.name, "best_epoch": result.best_epoch, "valid_track_acc": result.best_metric,
                "seconds": result.seconds,
                "test_track_acc": macro_by_source(trained[-1], tracks)["all"]["acc"],
                "zero_shot_test_track_acc": macro_by_source(untrained[-1], tracks)["all"]["acc"],
                "votes": votes}
        folds.append(fold)
        log.info("%s: best epoch %d, valid %.3f, test %.3f (zero-shot %.3f)", split.name, result.best_epoch,
                 result.best_metric, fold["test_track_acc"], fold["zero_shot_test_track_acc"])
    report: dict[str, Any] = {"protocol": protocol, "config": asdict(cfg), "n_tracks": len(tracks),
                              "track_sources": [t.source for t in tracks]}
    for kind, parts in (("transfer", trained), ("zero_shot", untrained)):
        pooled = _pool(parts)
        ev = evaluate(pooled, tracks, GENRES)
        ev.pop("tracks")
        report[kind] = {"track": macro_by_source(pooled, tracks), "evaluate": ev}
    report.update(folds=folds, valid_track_acc_mean=float(np.mean([f["valid_track_acc"] for f in folds])),
                  best_epoch_median=int(np.median([f["best_epoch"] for f in folds])))
    write_json(report, run_dir / "cv.json")
    return report


def run_cv(data: Sequence[str | Path], cfg: TransferConfig, run_dir: str | Path, cache_dir: str | Path = "cache",
           max_folds: int | None = None) -> dict[str, Any]:
    """Artist-grouped k-fold CV of the transfer head vs the zero-shot head; writes ``run_dir/cv.json``."""
    tracks = discover(data, GENRES)
    model = build_model("mobilenet", GENRES)
    emb = embed_tracks(model, tracks, GENRES, cfg, cache_dir)
    splits = group_kfold(tracks, cfg.folds, cfg.fold_seed)[: max_folds or cfg.folds]
    protocol = (f"{len(splits)} of {cfg.folds} artist-grouped stratified folds (training.splits.group_kfold, "
                f"seed {cfg.fold_seed}) over {', '.join(sorted({t.source for t in tracks}))}; test folds pooled; "
                f"track label = soft vote over clean 3-s windows at {cfg.hop_seconds}-s hop; "
                "head early-stopped on the next fold")
    return _run_splits(model, tracks, emb, splits, cfg, Path(run_dir), protocol)


def run_holdout(data: Sequence[str | Path], test_source: str, cfg: TransferConfig, run_dir: str | Path,
                cache_dir: str | Path = "cache") -> dict[str, Any]:
    """Train on every source but ``test_source`` (fixed epochs, no validation), test on all of it."""
    tracks = discover(data, GENRES)
    if test_source not in {t.source for t in tracks}:
        raise UsageError(f"no data source named {test_source!r} (have: {', '.join(sorted({t.source for t in tracks}))})")
    model = build_model("mobilenet", GENRES)
    emb = embed_tracks(model, tracks, GENRES, cfg, cache_dir)
    split = Split(f"holdout-{test_source}", tuple(i for i, t in enumerate(tracks) if t.source != test_source), (),
                  tuple(i for i, t in enumerate(tracks) if t.source == test_source))
    protocol = (f"trained on every clip not from {test_source} for {cfg.train.epochs} epochs, tested on all of "
                f"{test_source}; track label = soft vote over clean 3-s windows at {cfg.hop_seconds}-s hop")
    return _run_splits(model, tracks, emb, [split], cfg, Path(run_dir), protocol)


def cv_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one :func:`run_cv` report (track and window level, vs zero-shot)."""
    out = {"fold_seed": report["config"]["fold_seed"], "valid_track_acc_mean": report["valid_track_acc_mean"]}
    for kind in ("transfer", "zero_shot"):
        ev = report[kind]["evaluate"]
        out[kind] = {name: {"track_acc": v["acc"], "track_macro_acc": v["macro_acc"],
                            "window_acc": ev["per_source"][name]["window_acc"] if name in ev["per_source"]
                            else ev["window"]["acc"], "per_class": v["per_class"]}
                     for name, v in report[kind]["track"].items()}
    return out


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable lines: per source, transfer vs zero-shot (track acc, macro acc, window acc)."""
    s = cv_summary(report)
    return [f"{name:11s} n={report['transfer']['track'][name]['tracks']:3d}  "
            f"track acc {t['track_acc']:.3f} (zero-shot {z['track_acc']:.3f})  "
            f"macro {t['track_macro_acc']:.3f} ({z['track_macro_acc']:.3f})  "
            f"window acc {t['window_acc']:.3f} ({z['window_acc']:.3f})"
            for (name, t), z in zip(s["transfer"].items(), s["zero_shot"].values())]


def _mean_figures(summaries: Sequence[dict[str, Any]], kind: str) -> dict[str, Any]:
    names = summaries[0][kind]
    return {name: {k: float(np.mean([s[kind][name][k] for s in summaries]))
                   for k in ("track_acc", "track_macro_acc", "window_acc")} for name in names}


TIE = 0.005
"""Validation macro accuracies closer than this count as a tie, won by the candidate closer to AudioSet."""
SELECTION_RULE = (
    "candidates: the zero-shot head and every head config given; metric: validation macro track accuracy (soft "
    "vote), pooled over the validation folds of a fold assignment and averaged over fold assignments; the "
    f"highest wins, ties within {TIE} go to the candidate closer to AudioSet (zero-shot, then bias, last, head; "
    "then more rows kept at AudioSet; then the stronger L2-SP); test folds are never consulted. Nested estimate: "
    "within each outer fold the candidate with the best macro accuracy on that fold's validation fold is picked, "
    "its test-fold votes pooled")


def config_from_dict(d: dict[str, Any]) -> TransferConfig:
    """Rebuild a :class:`TransferConfig` from ``asdict`` output (as stored in ``cv.json``)."""
    return TransferConfig(**{**d, "augment": AugmentConfig(**d["augment"]), "train": TrainConfig(**d["train"])})


def config_name(d: dict[str, Any] | None) -> str:
    """Short name of a head config (``None``: the zero-shot head)."""
    if d is None:
        return "zero-shot"
    name = f"{d['train_part']} l2sp {d['l2sp']:g}"
    extras = {"views": (d["views"], TransferConfig.views), "mixup": (d["augment"]["mixup_alpha"], 0.0),
              "smooth": (d["train"]["label_smoothing"], 0.0), "balance": (d["balance"], True),
              "protect": (d["protect_below"], 1), "rival": (d["protect_rival"], False)}
    return name + "".join(f" {k} {v:g}" if not isinstance(v, bool) else f" {k} {v}"
                          for k, (v, default) in extras.items() if v != default)


def _closeness(d: dict[str, Any] | None) -> tuple[int, int, float]:
    """Sort key: smaller = closer to the AudioSet answer."""
    if d is None:
        return (-1, 0, 0.0)
    return (("bias", "last", "head").index(d["train_part"]), -d["protect_below"], -d["l2sp"])


def _mean(items: Sequence[Any]) -> Any:
    """Element-wise mean of equally shaped nested dicts of numbers."""
    if isinstance(items[0], dict):
        return {k: _mean([i[k] for i in items]) for k in items[0] if all(k in i for i in items)}
    return float(np.mean(items))


def _macro(votes: dict[str, Sequence[int]]) -> float:
    return scores(np.asarray(votes["label"]), np.asarray(votes["soft"]), GENRES)["macro_recall"]


def _pool_votes(parts: Sequence[dict[str, Sequence[int]]]) -> dict[str, list[int]]:
    return {k: [x for p in parts for x in p[k]] for k in ("track", "label", "soft")}


def select(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Choose among the configs of several ``cv`` reports (and the zero-shot head) on validation folds only.

    Reports of the same config with different fold seeds are one candidate; every candidate must
    have the same fold seeds. Returns the rule, every candidate's validation and test figures,
    the chosen one (with its run folders, from ``report["run_dir"]``) and the nested estimate.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in reports:
        if any("votes" not in f or "valid" not in f["votes"] for f in r["folds"]):
            raise UsageError(f"{r.get('run_dir', 'a run')}: no validation votes (re-run it with this version)")
        r = {**r, "config": asdict(config_from_dict(r["config"]))}  # fields added since the run: their defaults
        key = json.dumps({k: v for k, v in r["config"].items() if k != "fold_seed"}, sort_keys=True)
        groups.setdefault(key, []).append(r)
    by_seed = {key: {r["config"]["fold_seed"]: r for r in runs} for key, runs in groups.items()}
    seeds = sorted(next(iter(by_seed.values())))
    for runs in by_seed.values():
        if sorted(runs) != seeds:
            raise UsageError(f"{config_name(next(iter(runs.values()))['config'])}: fold seeds {sorted(runs)}, "
                             f"others have {seeds}")
    sources = reports[0]["track_sources"]
    first = next(iter(by_seed.values()))
    cands = [{"name": "zero-shot", "config": None, "runs": [],
              "folds": {s: [{p: f["votes"][p]["zero_shot"] for p in ("valid", "test")} for f in first[s]["folds"]]
                        for s in seeds}}]
    for runs in by_seed.values():
        cfg = runs[seeds[0]]["config"]
        cands.append({"name": config_name(cfg), "config": cfg, "runs": [runs[s].get("run_dir") for s in seeds],
                      "folds": {s: [{p: f["votes"][p]["transfer"] for p in ("valid", "test")}
                                    for f in runs[s]["folds"]] for s in seeds}})
    for c in cands:
        c["valid"] = _mean([_by_source(_pool_votes([f["valid"] for f in c["folds"][s]]), sources) for s in seeds])
        c["test"] = _mean([_by_source(_pool_votes([f["test"] for f in c["folds"][s]]), sources) for s in seeds])
        c["valid_macro_acc"] = c["valid"]["all"]["macro_acc"]
    best = max(c["valid_macro_acc"] for c in cands)
    chosen = min((c for c in cands if c["valid_macro_acc"] >= best - TIE),
                 key=lambda c: (_closeness(c["config"]), -c["valid_macro_acc"]))
    picks, nested = [], []
    for s in seeds:
        parts = []
        for i in range(len(cands[0]["folds"][s])):
            pick = max(cands, key=lambda c: (_macro(c["folds"][s][i]["valid"]), [-x for x in _closeness(c["config"])]))
            picks.append(pick["name"])
            parts.append(pick["folds"][s][i]["test"])
        nested.append(_by_source(_pool_votes(parts), sources))
    return {"rule": SELECTION_RULE, "fold_seeds": seeds, "chosen": chosen["name"], "chosen_config": chosen["config"],
            "chosen_runs": chosen["runs"],
            "nested": {"test": _mean(nested), "picks": {n: picks.count(n) for n in sorted(set(picks))}},
            "candidates": [{k: c[k] for k in ("name", "config", "valid_macro_acc", "valid", "test")} for c in cands]}


def selection_table(sel: dict[str, Any]) -> list[str]:
    """Markdown table of a :func:`select` result (validation figures decide; test figures for reference)."""
    srcs = [k for k in sel["candidates"][0]["test"] if k != "all"]
    head = ["candidate", "valid macro", "valid acc", "test acc", "test macro",
            *[f"{s} {m}" for s in srcs for m in ("acc", "macro")], "nested picks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(c["name"] + (" **(chosen)**" if c["name"] == sel["chosen"] else ""), c["valid"], c["test"],
             str(sel["nested"]["picks"].get(c["name"], 0))) for c in sel["candidates"]]
    rows.append(("nested (per-fold pick)", None, sel["nested"]["test"], ""))
    for name, valid, test, picks in rows:
        v = [f"{valid['all']['macro_acc']:.3f}", f"{valid['all']['acc']:.3f}"] if valid else ["–", "–"]
        t = [f"{test[s][m]:.3f}" for s in ["all", *srcs] for m in ("acc", "macro_acc")]
        lines.append("| " + " | ".join([name, *v, *t, picks]) + " |")
    return lines


def train_final(data: Sequence[str | Path], cfg: TransferConfig, run_dir: str | Path, out_dir: str | Path,
                name: str = "mobilenet", cv_reports: Sequence[dict[str, Any]] = (),
                selection: dict[str, Any] | None = None, cache_dir: str | Path = "cache") -> tuple[Path, Path]:
    """Train the head on every clip and export ``out_dir/name``.

    With ``cv_reports`` (CV runs of the same config, e.g. several fold assignments), the epochs are
    the median best epoch of all their folds and their figures go into the metadata, with the
    ``selection`` (from :func:`select`) that chose the config.
    """
    tracks = discover(data, GENRES)
    model = build_model("mobilenet", GENRES)
    emb = embed_tracks(model, tracks, GENRES, cfg, cache_dir)
    metrics: dict[str, Any] = {}
    if cv_reports:
        epochs = int(np.median([f["best_epoch"] for r in cv_reports for f in r["folds"]]))
        cfg = replace(cfg, train=replace(cfg.train, epochs=max(1, epochs)))
        summaries = [cv_summary(r) for r in cv_reports]
        metrics = {"protocol": cv_reports[0]["protocol"] + f"; repeated for fold seeds "
                               f"{[s['fold_seed'] for s in summaries]} and averaged",
                   "cv_mean": {"transfer": _mean_figures(summaries, "transfer"),
                               "zero_shot": _mean_figures(summaries, "zero_shot")},
                   "cv_runs": summaries}
        metrics["cv_track_acc"] = metrics["cv_mean"]["transfer"]["all"]["track_acc"]
        metrics["cv_track_macro_acc"] = metrics["cv_mean"]["transfer"]["all"]["track_macro_acc"]
    if selection:
        metrics["protocol"] += ("; the config was chosen on validation folds only (selection.rule); cv_* are the "
                                "pooled test-fold figures of that config, selection.nested_test estimates choosing "
                                "among the candidates and training, fold by fold")
        metrics["selection"] = {
            "rule": selection["rule"], "chosen": selection["chosen"], "fold_seeds": selection["fold_seeds"],
            "nested_test": {src: {k: v[k] for k in ("acc", "macro_acc")} for src, v in
                            selection["nested"]["test"].items()},
            "nested_picks": selection["nested"]["picks"],
            "candidates": {c["name"]: {"valid_macro_acc": c["valid_macro_acc"], "valid_acc": c["valid"]["all"]["acc"],
                                       "test_acc": c["test"]["all"]["acc"], "test_macro_acc": c["test"]["all"]["macro_acc"]}
                           for c in selection["candidates"]}}
    head, result = fit_head(model, tracks, emb, all_tracks_split(tracks), cfg, Path(run_dir))
    head.install(model)
    model.eval()
    thin = [label for label, kept in zip(GENRES, head.frozen.tolist()) if kept]
    training = {"method": "frozen AudioSet mn04 backbone; MLP head started from the AudioSet genre rows and "
                          "trained on cached embeddings of augmented 3-s windows with an L2-SP pull toward them; "
                          f"output rows kept at AudioSet for genres with fewer than {cfg.protect_below} artists in the "
                          f"data: {', '.join(thin) or 'none'}",
                "data": {src: sum(t.source == src for t in tracks) for src in sorted({t.source for t in tracks})},
                "windows": int((emb.view > 0).sum()), "epochs": cfg.train.epochs, "seconds": round(result.seconds, 1),
                "config": asdict(cfg)}
    provenance = {"source": "EfficientAT mn04_as (F. Schmid), AudioSet mAP 0.432",
                  "url": "https://github.com/fschmid56/EfficientAT"}
    return export_onnx(model, out_dir, name, metrics=metrics, training=training, provenance=provenance)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.transfer", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("cv", "holdout", "select", "final"))
    ap.add_argument("--data", action="append", default=[], metavar="DIR", help="GTZAN-layout folder (repeat)")
    ap.add_argument("--out", default="runs/transfer", help="run folder")
    ap.add_argument("--cache", default="cache", help="audio and embedding cache folder")
    ap.add_argument("--views", type=int, default=TransferConfig.views)
    ap.add_argument("--l2sp", type=float, default=TransferConfig.l2sp)
    ap.add_argument("--train-part", choices=TRAIN_PARTS, default=TransferConfig.train_part)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--mixup", type=float, default=0.0, help="mixup alpha on embeddings (0 = off)")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--no-balance", action="store_true", help="sample windows without class balancing")
    ap.add_argument("--protect-below", type=int, default=TransferConfig.protect_below, metavar="N",
                    help="keep the AudioSet rows of genres with fewer than N training artists (0: train every row)")
    ap.add_argument("--protect-rival", action="store_true",
                    help="keep the protected rows in the training softmax as fixed rivals")
    ap.add_argument("--max-folds", type=int)
    ap.add_argument("--fold-seed", type=int, default=0, help="(cv) seed of the fold assignment")
    ap.add_argument("--test-source", help="(holdout) data source (folder name) to test on, training on the others")
    ap.add_argument("--cv", action="append", default=[], metavar="RUN",
                    help="(select) CV run folder (repeat: every config, every fold seed)")
    ap.add_argument("--selection", metavar="FILE",
                    help="(final) selection.json from select: its config, the median best epoch of its CV folds, "
                         "its figures into the metadata")
    ap.add_argument("--models", default="models", help="(final) export folder")
    ap.add_argument("--name", default="mobilenet", help="(final) model name")
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)
    torch.set_num_threads(1)  # one core per job: the machine's two cores are shared
    base = TransferConfig()
    cfg = replace(base, views=args.views, l2sp=args.l2sp, train_part=args.train_part, balance=not args.no_balance,
                  protect_below=args.protect_below, protect_rival=args.protect_rival, fold_seed=args.fold_seed,
                  augment=replace(base.augment, mixup_alpha=args.mixup, mixup_prob=0.5 if args.mixup else 0.0),
                  train=replace(base.train, epochs=args.epochs, lr=args.lr, label_smoothing=args.label_smoothing))
    try:
        if args.command != "select" and not args.data:
            raise UsageError(f"{args.command} needs --data DIR")
        if args.command == "cv":
            report = run_cv(args.data, cfg, args.out, args.cache, args.max_folds)
            print("\n".join(summary_lines(report)))
        elif args.command == "holdout":
            if not args.test_source:
                raise UsageError("holdout needs --test-source NAME")
            report = run_holdout(args.data, args.test_source, cfg, args.out, args.cache)
            print("\n".join(summary_lines(report)))
        elif args.command == "select":
            if not args.cv:
                raise UsageError("select needs --cv RUN (repeat)")
            sel = select([{**_read_json(Path(run) / "cv.json"), "run_dir": run} for run in args.cv])
            Path(args.out).mkdir(parents=True, exist_ok=True)
            write_json(sel, Path(args.out) / "selection.json")
            print("\n".join(selection_table(sel)))
        else:
            reports, sel = [], None
            if args.selection:
                sel = _read_json(Path(args.selection))
                if sel["chosen_config"] is None:
                    raise UsageError("the selection chose the zero-shot head: ship models/audioset-zeroshot instead")
                cfg = config_from_dict(sel["chosen_config"])
                reports = [_read_json(Path(run) / "cv.json") for run in sel["chosen_runs"]]
            paths = train_final(args.data, cfg, args.out, args.models, args.name, reports, sel, args.cache)
            print(*paths)
    except StreamtagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
