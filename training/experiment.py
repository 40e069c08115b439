"""One experiment = config + data + split(s) -> trained model(s), run folder, reports.

:func:`run_split` trains and tests one split; :func:`run_cv` runs the folds of a k-fold and
aggregates them into ``cv.json``. Both write everything under a run folder (``runs/<name>/``).
"""

from __future__ import annotations

import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from streamtag.errors import UsageError

from .augment import AugmentConfig
from .data import AudioCache, DataConfig, Track, WindowDataset, discover, label_set, make_loader
from .evaluate import (PREDICTIONS, evaluate, plot_confusion, plot_cv_history, plot_history, predict, save_predictions,
                       write_json)
from .models import GenreNet, build_model
from .splits import Split, make_splits
from .trainer import TrainConfig, Trainer

log = logging.getLogger(__name__)

EVAL_BATCH = 64
"""Batch size for validation and test windows."""


@dataclass
class RunConfig:
    """Everything one training run depends on (written to ``config.json``)."""

    arch: str
    data: list[str]
    split: str = "group"
    """``group``, ``stratified``, ``filtered``, ``all`` or ``csv:<path>`` (see :mod:`training.splits`)."""
    split_dir: str | None = None
    """Folder of ``{train,valid,test}_filtered.txt`` for ``--split filtered``."""
    folds: int = 5
    seed: int = 0
    init: str | None = None
    """Checkpoint or state_dict to start from."""
    labels: list[str] | None = None
    """Closed label set; ``None``: the genres found in the data."""
    model: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the architecture's builder."""
    data_cfg: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["data_cfg"] = DataConfig(**d.get("data_cfg", {}))
        d["train"] = TrainConfig(**d.get("train", {}))
        d["augment"] = AugmentConfig(**d.get("augment", {}))
        return cls(**d)


def _section(cls, values: dict[str, Any], where: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UsageError(f"{where}: unknown keys {', '.join(unknown)}")
    return cls(**values)


def load_config(path: str | Path | None, arch: str | None) -> RunConfig:
    """Read ``configs/train/<arch>.toml`` (sections ``[model] [data] [train] [augment]``, top-level ``split``/``folds``/``seed``)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UsageError(f"{path}: config not found") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: bad config ({exc})") from None
    arch = arch or raw.get("arch")
    if not arch:
        raise UsageError("no architecture: give --arch or set arch in the config")
    top = {k: raw[k] for k in ("split", "split_dir", "folds", "seed", "labels") if k in raw}
    extra = sorted(set(raw) - set(top) - {"arch", "model", "data", "train", "augment"})
    if extra:
        raise UsageError(f"{path}: unknown keys {', '.join(extra)}")
    return RunConfig(arch=arch, data=[], model=dict(raw.get("model", {})),
                     data_cfg=_section(DataConfig, raw.get("data", {}), f"{path} [data]"),
                     train=_section(TrainConfig, raw.get("train", {}), f"{path} [train]"),
                     augment=_section(AugmentConfig, raw.get("augment", {}), f"{path} [augment]"), **top)


def build(rc: RunConfig, labels: Sequence[str]) -> GenreNet:
    """Fresh model for ``rc.arch`` (loading ``rc.init`` when set); UsageError on a bad arch or init file."""
    try:
        model = build_model(rc.arch, labels, **rc.model)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot build {rc.arch!r}: {exc}") from None
    if rc.init:
        load_weights(model, rc.init)
    return model


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a ``best.pt``/plain state_dict or a trainer ``checkpoint.pt`` into ``model`` (strict)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: weights file not found") from None
    except Exception as exc:  # torch raises many kinds for a non-checkpoint file
        raise UsageError(f"{path}: not a torch checkpoint ({type(exc).__name__})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: weights do not fit this model ({first})") from None


def data_config(rc: RunConfig, model: GenreNet) -> DataConfig:
    """The run's data settings with rate and window taken from the model (they are its, not the data's)."""
    d = asdict(rc.data_cfg)
    d.update(sample_rate=model.frontend_params.sample_rate, window_seconds=model.window_seconds)
    return DataConfig(**d)


def tracks_and_labels(rc: RunConfig) -> tuple[list[Track], tuple[str, ...]]:
    """Discover the data; labels are ``rc.labels`` or the genres found."""
    tracks = discover(rc.data, rc.labels)
    return tracks, tuple(rc.labels) if rc.labels else label_set(tracks)


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def _loader(tracks: Sequence[Track], idx: Sequence[int], labels, cache, dcfg, train: bool, batch: int, seed: int):
    ds = WindowDataset([tracks[i] for i in idx], labels, cache, dcfg, train=train, seed=seed)
    return make_loader(ds, batch, train=train, seed=seed)


def run_split(rc: RunConfig, tracks: Sequence[Track], labels: Sequence[str], split: Split, run_dir: str | Path,
              resume: bool = False, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
              test: bool = True) -> dict[str, Any]:
    """Train on ``split.train`` (early stopping on ``split.valid``), then score ``split.test``.

    Writes ``config.json``, ``train.log``, ``history.json``, ``best.pt``, ``history.png`` and, with
    a test set, ``report.json`` + ``predictions.npz`` + ``confusion.png`` (the validation set's under
    ``valid/``). Returns a summary dict (also ``summary.json``).
    ``test=False`` (tuning) never touches the test tracks.
    """
    run_dir = Path(run_dir)
    if resume and not (run_dir / "checkpoint.pt").is_file():
        raise UsageError(f"{run_dir}: no checkpoint to resume from")
    run_dir.mkdir(parents=True, exist_ok=True)
    model = build(rc, labels)
    dcfg = data_config(rc, model)
    write_json({**rc.to_dict(), "data_cfg": asdict(dcfg), "labels": list(labels), "split_name": split.name,
                "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)},
               run_dir / "config.json")
    cache = AudioCache(dcfg.cache_dir, dcfg.sample_rate)
    cache.prepare([tracks[i] for i in (*split.train, *split.valid, *split.test)])  # a bad file fails before training
    train_loader = _loader(tracks, split.train, labels, cache, dcfg, True, rc.train.batch_size, rc.seed)
    valid_loader = None
    if split.valid:
        valid_loader = _loader(tracks, split.valid, labels, cache, dcfg, False, EVAL_BATCH, rc.seed)
    trainer = Trainer(model, rc.train, run_dir, rc.augment, n_classes=len(labels))
    log.info("%s %s: %d train / %d valid / %d test tracks, %d params, device %s", rc.arch, split.name,
             len(split.train), len(split.valid), len(split.test), count_params(model), trainer.device)
    result = trainer.fit(train_loader, valid_loader, resume=resume, on_epoch=on_epoch)
    plot_history(result.history, run_dir / "history.png")
    best = next(h for h in result.history if h["epoch"] == result.best_epoch)
    summary: dict[str, Any] = {
        "split": split.name, "arch": rc.arch, "params": count_params(model), "best_epoch": result.best_epoch,
        "epochs_run": len(result.history), "train_seconds": result.seconds, "epoch_seconds": result.epoch_seconds,
        "valid_track_acc": best.get("valid_track_acc"), "valid_acc": best.get("valid_acc"),
    }
    if test and split.valid:  # the best model's validation windows, kept for choosing ensembles (valid/)
        score(model, [tracks[i] for i in split.valid], labels, dcfg, run_dir / "valid",
              f"{rc.arch} {split.name} validation", trainer.device)
    if test and split.test:
        t0 = time.perf_counter()
        report = score(model, [tracks[i] for i in split.test], labels, dcfg, run_dir, f"{rc.arch} {split.name}",
                       trainer.device)
        summary.update(headline(report), test_seconds=time.perf_counter() - t0)
    write_json(summary, run_dir / "summary.json")
    return summary


def score(model: torch.nn.Module, tracks: Sequence[Track], labels: Sequence[str], dcfg: DataConfig,
          out_dir: str | Path, title: str, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Evaluate ``model`` on every window of ``tracks``; writes ``report.json`` and ``confusion.png`` to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = WindowDataset(tracks, labels, AudioCache(dcfg.cache_dir, dcfg.sample_rate), dcfg, train=False)
    preds = predict(model, make_loader(ds, EVAL_BATCH, train=False), device)
    report = evaluate(preds, ds.tracks, labels)
    report["title"] = title
    write_json(report, out_dir / "report.json")
    starts = np.array([start for _, start in ds.items], dtype=np.float64) / dcfg.sample_rate
    save_predictions(preds, ds.tracks, labels, starts, out_dir / PREDICTIONS)
    plot_confusion(report["track_soft"]["confusion"], labels, out_dir / "confusion.png", f"{title} track (soft vote)")
    return report


def score_folds(model: GenreNet, rc: RunConfig, out_dir: str | Path, max_folds: int | None = None,
                fold: int | None = None) -> dict[str, Any]:
    """Score a fixed model (no training) on the test and validation parts of each split; writes ``cv.json``.

    The folds are the ones :func:`run_cv` makes from the same data, split, folds and seed, so a
    pretrained baseline (e.g. ``audioset-zeroshot``) gets a row comparable with trained models.
    """
    out_dir = Path(out_dir)
    tracks, labels = tracks_and_labels(rc)
    splits = make_splits(tracks, rc.split, rc.folds, rc.seed, rc.split_dir)
    if fold is not None:
        if not 0 <= fold < len(splits):
            raise UsageError(f"--fold {fold} out of range (this split has {len(splits)})")
        chosen = [(fold, splits[fold])]
    else:
        chosen = list(enumerate(splits))[: max_folds or len(splits)]
    dcfg = data_config(rc, model)
    summaries = []
    for i, split in chosen:
        report = score(model, [tracks[j] for j in split.test], labels, dcfg, out_dir / f"fold{i}", f"{rc.arch} {split.name}")
        summaries.append({"split": split.name, "arch": rc.arch, "params": count_params(model), **headline(report)})
        if split.valid:  # the figure a trained model is selected on, for the same split
            valid = score(model, [tracks[j] for j in split.valid], labels, dcfg, out_dir / f"fold{i}" / "valid",
                          f"{rc.arch} {split.name} validation")
            summaries[-1]["valid_track_acc"] = valid["track_soft"]["acc"]
        write_json(summaries[-1], out_dir / f"fold{i}" / "summary.json")
    cv = aggregate(summaries, labels)
    cv.update(arch=rc.arch, split=rc.split, folds_total=len(splits), data=rc.data, n_tracks=len(tracks), trained=False)
    write_json(cv, out_dir / "cv.json")
    plot_confusion(cv["confusion"], labels, out_dir / "confusion.png", f"{rc.arch} {rc.split} folds, track (soft vote)")
    return cv


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an :func:`training.evaluate.evaluate` report."""
    return {
        "test_window_acc": report["window"]["acc"],
        "test_track_soft_acc": report["track_soft"]["acc"],
        "test_track_hard_acc": report["track_hard"]["acc"],
        "test_track_macro_f1": report["track_soft"]["macro_f1"],
        "test_per_source": report["per_source"],
        "test_confusion": report["track_soft"]["confusion"],
    }


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    v = np.array([x for x in values if x is not None], dtype=float)
    return {"mean": float(v.mean()) if v.size else float("nan"), "std": float(v.std()) if v.size else float("nan"),
            "n": int(v.size)}


def run_cv(rc: RunConfig, run_dir: str | Path, max_folds: int | None = None, resume: bool = False) -> dict[str, Any]:
    """Train and test each fold (``fold<i>/``; at most ``max_folds``); write the aggregate ``cv.json`` and
    ``confusion.png``, and every fold's learning curves in one ``history.png``."""
    run_dir = Path(run_dir)
    tracks, labels = tracks_and_labels(rc)
    splits = make_splits(tracks, rc.split, rc.folds, rc.seed, rc.split_dir)
    splits = splits[: max_folds or len(splits)]
    folds = []
    for i, split in enumerate(splits):
        fdir = run_dir / f"fold{i}"
        done = fdir / "summary.json"
        if resume and done.is_file() and (fdir / "report.json").is_file():
            folds.append(json.loads(done.read_text()))
            log.info("fold %d already done", i)
            continue
        folds.append(run_split(rc, tracks, labels, split, fdir,
                               resume=resume and (fdir / "checkpoint.pt").is_file()))
    cv = aggregate(folds, labels)
    cv.update(arch=rc.arch, split=rc.split, folds_total=len(make_splits(tracks, rc.split, rc.folds, rc.seed, rc.split_dir)),
              data=rc.data, n_tracks=len(tracks))
    write_json(cv, run_dir / "cv.json")
    plot_confusion(cv["confusion"], labels, run_dir / "confusion.png", f"{rc.arch} {rc.split} CV, track (soft vote)")
    plot_cv_history([json.loads((run_dir / f"fold{i}" / "history.json").read_text()) for i in range(len(splits))],
                    run_dir / "history.png", f"{rc.arch} {rc.split} CV: learning curves of every fold")
    return cv


def aggregate(folds: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """Mean ± std over folds of each headline figure, per source too, and the summed confusion matrix."""
    keys = ("valid_track_acc", "test_window_acc", "test_track_soft_acc", "test_track_hard_acc", "test_track_macro_f1",
            "epoch_seconds", "train_seconds")
    out: dict[str, Any] = {k: _mean_std([f.get(k) for f in folds]) for k in keys}
    sources = sorted({s for f in folds for s in f.get("test_per_source", {})})
    out["per_source"] = {
        s: {k: _mean_std([f["test_per_source"][s][k] for f in folds if s in f.get("test_per_source", {})])
            for k in ("window_acc", "track_soft_acc", "track_hard_acc")}
        for s in sources
    }
    out["confusion"] = np.sum([np.array(f["test_confusion"]) for f in folds if "test_confusion" in f], axis=0).tolist() \
        if any("test_confusion" in f for f in folds) else np.zeros((len(labels), len(labels)), int).tolist()
    out["labels"] = list(labels)
    out["params"] = folds[0]["params"] if folds else 0
    out["folds"] = [{k: v for k, v in f.items() if k != "test_confusion"} for f in folds]
    return out
