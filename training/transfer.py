"""Transfer from frozen pretrained networks: cross-validate heads, choose one on validation folds, ship it.

The family: :mod:`training.backbones` (frozen networks) -> :mod:`training.features` (cached window
embeddings) -> :mod:`training.heads` (what is trained) -> :mod:`training.selection` (the choice) ->
:class:`FusedNet` here (backbones + head + temperature in one exported graph, waveform in).

``python -m training.transfer cv --data DIR ... [--kind K --backbones A,B ...]`` cross-validates one head
config (artist-grouped folds; every fold also scores each backbone's zero-shot answer);
``select --cv RUN ...`` chooses among the configs of several ``cv`` runs on their validation folds only;
``final --data DIR ... --selection FILE --name N`` trains the chosen config on every clip and exports
``models/N.onnx``; ``holdout --test-source NAME`` trains on the other sources and tests on that one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from streamtag.errors import StreamtagError, UsageError
from streamtag.vote import sharpen

from .augment import AugmentConfig
from .backbones import RATE, Backbone, build_all
from .data import Track, discover
from .evaluate import Predictions, evaluate, predict, softmax, track_votes, write_json
from .export import export_onnx
from .features import VIEWS, WINDOW_SECONDS, FeatureConfig, Features, load_features
from .heads import KINDS, Calibrated, GenreHead, HeadConfig, fit_temperature, thin_classes
from .models.mobilenet import DETECTORS, Detectors
from .models.mobilenet import GTZAN_GENRES as GENRES
from .selection import by_source, mean_nested, select, selection_table
from .splits import Split, all_tracks_split, group_kfold
from .trainer import TrainConfig, Trainer

log = logging.getLogger("training.transfer")  # not __name__: also run as __main__

ZERO_SHOT = ("audioset", "musicnn-msd")
"""Backbones whose untrained genre answer is scored in every fold (rows to beat)."""
BACKBONE_COST = {"audioset": 1, "musicnn-msd": 2, "musicnn-mtt": 4}
"""Relative CPU cost per window (ONNX Runtime), for breaking validation ties toward the cheaper candidate."""
CALIBRATION_BINS = 10


@dataclass
class TransferConfig:
    """One cross-validated candidate: its features, its head and the fold assignment."""

    head: HeadConfig = field(default_factory=HeadConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    balance: str = "genre"
    """Sampling of training windows: ``genre`` (each genre equally often), ``artist`` (each genre equally
    often and, within a genre, each artist), ``none`` (as they come)."""
    mixup: float = 0.0
    """Mixup alpha on the concatenated embeddings (0 = off)."""
    folds: int = 5
    fold_seed: int = 0
    """Seed of the artist-grouped fold assignment (CV only)."""


def config_from_dict(d: dict[str, Any]) -> TransferConfig:
    """Rebuild a :class:`TransferConfig` from ``asdict`` output (as stored in ``cv.json``)."""
    h, f = dict(d["head"]), dict(d["features"])
    head = HeadConfig(**{**h, "backbones": tuple(h["backbones"]), "train": TrainConfig(**h["train"])})
    feats = FeatureConfig(**{**f, "augment": AugmentConfig(**f["augment"])})
    balance = {True: "genre", False: "none"}.get(d.get("balance"), d.get("balance", "genre"))  # early runs: a bool
    return TransferConfig(**{**d, "head": head, "features": feats, "balance": balance})


def config_name(cfg: TransferConfig) -> str:
    """Short readable name of a head config (what differs from the defaults)."""
    h, base = cfg.head, HeadConfig()
    name = f"{h.kind} [{'+'.join(h.backbones)}]"
    extras = {"hidden": (h.hidden, base.hidden), "dropout": (h.dropout, base.dropout),
              "l2sp": (h.l2sp, base.l2sp if h.kind in ("audioset", "residual") else h.l2sp),
              "part": (h.train_part, base.train_part), "protect": (h.protect_below, base.protect_below),
              "smooth": (h.train.label_smoothing, base.train.label_smoothing),
              "wd": (h.train.weight_decay, base.train.weight_decay), "batch": (h.train.batch_size, base.train.batch_size),
              "lr": (h.train.lr, base.train.lr),
              "views": (h.views, base.views), "rows": (h.rows, base.rows), "mixup": (cfg.mixup, 0.0), "balance": (cfg.balance, "genre")}
    return name + "".join(f" {k} {v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f" {k} {v}"
                          for k, (v, default) in extras.items() if v != default)


def config_rank(cfg: TransferConfig | None, zero_shot: str = "") -> tuple:
    """Tie order, cheaper first: CPU cost of the backbones, then zero-shot < trained, then head size."""
    if cfg is None:
        return (BACKBONE_COST[zero_shot], 0, 0)
    return (sum(BACKBONE_COST[b] for b in cfg.head.backbones), 1 + KINDS.index(cfg.head.kind), cfg.head.hidden)


BALANCES = ("genre", "artist", "none")


def _train_loader(data: TensorDataset, cfg: TransferConfig, tracks: Sequence[Track]) -> DataLoader:
    gen = torch.Generator().manual_seed(cfg.head.train.seed)
    bs = cfg.head.train.batch_size
    if cfg.balance == "none":
        return DataLoader(data, batch_size=bs, shuffle=True, generator=gen)
    y = data.tensors[1].numpy()
    if cfg.balance == "genre":
        weights = torch.from_numpy(1.0 / np.bincount(y)[y])
    else:  # each genre weighs 1, shared equally by its artists, each artist's share by its windows
        pair = np.array([f"{g}|{tracks[t].group}" for g, t in zip(y, data.tensors[2].numpy())])
        pairs, inverse, windows = np.unique(pair, return_inverse=True, return_counts=True)
        artists = np.bincount([int(p.split("|")[0]) for p in pairs], minlength=int(y.max()) + 1)
        weights = torch.from_numpy(1.0 / (windows[inverse] * artists[y]))
    sampler = WeightedRandomSampler(weights, num_samples=len(y), replacement=True, generator=gen)
    return DataLoader(data, batch_size=bs, sampler=sampler, generator=gen)


def _eval_loader(data: TensorDataset) -> DataLoader:
    return DataLoader(data, batch_size=1024, shuffle=False)


def artists_by_genre(tracks: Sequence[Track], indices: Sequence[int]) -> dict[str, set[str]]:
    """Distinct artist groups of each genre among ``tracks[indices]``."""
    out: dict[str, set[str]] = {}
    for i in indices:
        out.setdefault(tracks[i].genre, set()).add(tracks[i].group)
    return out


def fit_head(backbones: dict[str, Backbone], tracks: Sequence[Track], feats: Features, split: Split,
             cfg: TransferConfig, run_dir: Path) -> tuple[GenreHead, Any]:
    """Train a head on ``split.train``'s augmented views, early stopping on ``split.valid``'s clean windows."""
    h = cfg.head
    torch.manual_seed(h.train.seed)
    train = (feats.track_means(h.backbones, split.train, h.views) if h.rows == "tracks"
             else feats.select(h.backbones, split.train, h.views))
    head = GenreHead(h, [backbones[n] for n in h.backbones], GENRES, train.tensors[0])
    thin = thin_classes(artists_by_genre(tracks, split.train), GENRES, h.protect_below)
    head.protect(thin)
    if thin:
        log.info("%s: rows kept at AudioSet (fewer than %d training artists): %s", split.name, h.protect_below,
                 ", ".join(thin))
    augment = replace(AugmentConfig.off(), mixup_alpha=cfg.mixup, mixup_prob=0.5 if cfg.mixup else 0.0)
    trainer = Trainer(head, h.train, run_dir, augment, n_classes=len(GENRES), regulariser=lambda m: m.penalty())
    valid = _eval_loader(feats.select(h.backbones, split.valid)) if split.valid else None
    result = trainer.fit(_train_loader(train, cfg, tracks), valid)
    head.eval()
    return head, result


def votes(preds: Predictions) -> dict[str, list[int]]:
    """Track ids, true labels and soft-vote predictions, JSON-ready (what selection needs)."""
    v = track_votes(preds)
    return {"track": v["track"].tolist(), "label": v["labels"].tolist(), "soft": v["soft"].tolist()}


def zero_shot_predictions(backbones: dict[str, Backbone], feats: Features,
                          tracks: Sequence[int]) -> dict[str, Predictions]:
    """Each :data:`ZERO_SHOT` backbone's untrained answer on the clean windows of ``tracks``."""
    out = {}
    for b in backbones.values():
        if b.name in ZERO_SHOT:
            x, y, t = feats.select([b.name], tracks).tensors
            with torch.no_grad():
                out[b.name] = Predictions(b.zero_shot(x).numpy(), y.numpy(), t.numpy())
    return out


def track_probabilities(probs: np.ndarray, labels: np.ndarray, track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean window probabilities of each track (what ``streamtag tag`` reports per file) and its label."""
    tracks = np.unique(track)
    return (np.stack([probs[track == i].mean(axis=0) for i in tracks]),
            np.array([labels[track == i][0] for i in tracks]))


def fit_temperatures(preds: Predictions) -> tuple[float, float]:
    """(window temperature on the logits, track temperature on the tracks' mean probabilities), fitted on ``preds``."""
    window = fit_temperature(preds.logits, preds.labels)
    mean, label = track_probabilities(softmax(preds.logits / window), preds.labels, preds.track_index)
    return window, fit_temperature(np.log(np.clip(mean, 1e-12, 1.0)), label)


def calibration(preds: Predictions, window_t: float, track_t: float) -> dict[str, Any]:
    """Window- and track-level confidence vs correctness, raw and with both temperatures (for ECE tables)."""
    out = {}
    for name, tw, tt in (("raw", 1.0, 1.0), ("calibrated", window_t, track_t)):
        p = softmax(preds.logits / tw)
        mean, label = track_probabilities(p, preds.labels, preds.track_index)
        mean = sharpen(mean, tt)
        out[name] = {"window_conf": p.max(axis=1).round(4).tolist(),
                     "window_correct": (p.argmax(1) == preds.labels).tolist(),
                     "track_conf": mean.max(axis=1).round(4).tolist(), "track_correct": (mean.argmax(1) == label).tolist()}
    return out


def reliability(conf: Sequence[float], correct: Sequence[bool], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Expected calibration error and the per-bin table (equal-width confidence bins)."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(m.sum()), "confidence": float(conf[m].mean()),
                         "accuracy": float(correct[m].mean())})
            ece += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return {"ece": float(ece), "n": int(len(conf)), "bins": rows}


def _run_splits(backbones: dict[str, Backbone], tracks: Sequence[Track], feats: Features, splits: Sequence[Split],
                cfg: TransferConfig, run_dir: Path, protocol: str) -> dict[str, Any]:
    """Train and calibrate a head per split; score it and the zero-shot answers; write ``run_dir/cv.json``."""
    trained, zero, folds = [], {}, []
    for split in splits:
        head, result = fit_head(backbones, tracks, feats, split, cfg, run_dir / split.name)
        parts = {"test": split.test, **({"valid": split.valid} if split.valid else {})}
        preds = {p: predict(head, _eval_loader(feats.select(cfg.head.backbones, idx)))
                 for p, idx in parts.items()}
        zs = {p: zero_shot_predictions(backbones, feats, idx) for p, idx in parts.items()}
        temperature, track_t = fit_temperatures(preds["valid"]) if split.valid else (1.0, 1.0)
        trained.append(preds["test"])
        for name, p in zs["test"].items():
            zero.setdefault(name, []).append(p)
        t = preds["test"]
        fold = {"split": split.name, "best_epoch": result.best_epoch, "valid_track_acc": result.best_metric,
                "seconds": result.seconds, "temperature": temperature, "track_temperature": track_t,
                "votes": {p: {"trained": votes(preds[p]), **{f"zero_shot:{n}": votes(z) for n, z in zs[p].items()}}
                          for p in parts},
                "calibration": calibration(t, temperature, track_t)}
        folds.append(fold)
        log.info("%s: best epoch %d, valid %.3f, T %.2f / track %.2f", split.name, result.best_epoch,
                 result.best_metric, temperature, track_t)
    report: dict[str, Any] = {"protocol": protocol, "config": asdict(cfg), "name": config_name(cfg),
                              "n_tracks": len(tracks), "track_sources": [t.source for t in tracks]}
    for kind, parts in (("trained", trained), *((f"zero_shot:{n}", z) for n, z in zero.items())):
        pooled = Predictions(*(np.concatenate([getattr(p, a) for p in parts]) for a in ("logits", "labels",
                                                                                      "track_index")))
        ev = evaluate(pooled, tracks, GENRES)
        ev.pop("tracks")
        report[kind] = {"track": by_source(votes(pooled), report["track_sources"], GENRES), "evaluate": ev}
    for part in ("raw", "calibrated"):
        report.setdefault("calibration", {})[part] = {
            level: reliability([c for f in folds for c in f["calibration"][part][f"{level}_conf"]],
                               [c for f in folds for c in f["calibration"][part][f"{level}_correct"]])
            for level in ("window", "track")}
    report.update(folds=folds, best_epoch_median=int(np.median([f["best_epoch"] for f in folds])),
                  temperature_median=float(np.median([f["temperature"] for f in folds])),
                  track_temperature_median=float(np.median([f["track_temperature"] for f in folds])))
    write_json(report, run_dir / "cv.json")
    return report


def _setup(data: Sequence[str | Path], cfg: TransferConfig, cache_dir: str | Path,
           extra: Sequence[str] = ()) -> tuple[dict[str, Backbone], list[Track], Features]:
    """The clips, the head's backbones (and ``extra`` ones) by name, and their cached features."""
    tracks = discover(data, GENRES)
    backbones = build_all(list(dict.fromkeys([*cfg.head.backbones, *extra])))
    feats = load_features(backbones, tracks, GENRES, cfg.features, cache_dir)
    return {b.name: b for b in backbones}, tracks, feats


def run_cv(data: Sequence[str | Path], cfg: TransferConfig, run_dir: str | Path, cache_dir: str | Path = "cache",
           max_folds: int | None = None) -> dict[str, Any]:
    """Artist-grouped k-fold CV of one head config and of the zero-shot answers; writes ``run_dir/cv.json``."""
    backbones, tracks, feats = _setup(data, cfg, cache_dir, ZERO_SHOT)
    splits = group_kfold(tracks, cfg.folds, cfg.fold_seed)[: max_folds or cfg.folds]
    protocol = (f"{len(splits)} of {cfg.folds} artist-grouped stratified folds (training.splits.group_kfold, "
                f"seed {cfg.fold_seed}) over {', '.join(sorted({t.source for t in tracks}))}; test folds pooled; "
                f"track label = soft vote over clean 3-s windows at {cfg.features.hop_seconds}-s hop; head "
                "early-stopped and its temperature fitted on the next fold (validation)")
    return _run_splits(backbones, tracks, feats, splits, cfg, Path(run_dir), protocol)


def run_holdout(data: Sequence[str | Path], test_source: str, cfg: TransferConfig, run_dir: str | Path,
                cache_dir: str | Path = "cache") -> dict[str, Any]:
    """Train on every source but ``test_source`` (fixed epochs, no validation), test on all of it."""
    backbones, tracks, feats = _setup(data, cfg, cache_dir, ZERO_SHOT)
    if test_source not in {t.source for t in tracks}:
        raise UsageError(f"no data source named {test_source!r} (have: {', '.join(sorted({t.source for t in tracks}))})")
    split = Split(f"holdout-{test_source}", tuple(i for i, t in enumerate(tracks) if t.source != test_source), (),
                  tuple(i for i, t in enumerate(tracks) if t.source == test_source))
    protocol = (f"trained on every clip not from {test_source} for {cfg.head.train.epochs} epochs, tested on all "
                f"of {test_source}; track label = soft vote over clean 3-s windows at {cfg.features.hop_seconds}-s hop")
    return _run_splits(backbones, tracks, feats, [split], cfg, Path(run_dir), protocol)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Per source: the trained head vs each zero-shot answer (track acc, macro acc, window acc)."""
    kinds = [k for k in report if k == "trained" or k.startswith("zero_shot:")]
    lines = [report["name"]]
    for src in report["trained"]["track"]:
        parts = []
        for k in kinds:
            t = report[k]["track"][src]
            win = (report[k]["evaluate"]["per_source"][src]["window_acc"] if src != "all"
                   else report[k]["evaluate"]["window"]["acc"])
            parts.append(f"{k.replace('zero_shot:', 'zs ')}: acc {t['acc']:.3f} macro {t['macro_acc']:.3f} "
                         f"win {win:.3f}")
        lines.append(f"  {src:11s} n={report['trained']['track'][src]['tracks']:3d}  " + " | ".join(parts))
    cal = report["calibration"]
    lines.append(f"  ECE window {cal['raw']['window']['ece']:.3f} -> {cal['calibrated']['window']['ece']:.3f}, "
                 f"track {cal['raw']['track']['ece']:.3f} -> {cal['calibrated']['track']['ece']:.3f} "
                 f"(T median {report['temperature_median']:.2f})")
    return lines


SELECTION_RULE = (
    "candidates: the zero-shot answers of the AudioSet network and of musicnn-msd, and every head config given; "
    "metric: validation macro track accuracy (soft vote), pooled over the validation folds of a fold assignment "
    "and averaged over fold assignments; the highest wins, ties within 0.005 go to the cheaper candidate (fewer "
    "or cheaper backbones, then zero-shot, audioset, residual, mlp, late heads, then the smaller hidden layer); "
    "test folds are never consulted. Nested estimate: within each outer fold the candidate with the best macro "
    "accuracy on that fold's validation fold is picked, its test-fold votes pooled")


def candidates_from_reports(reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Selection candidates: one per head config (its fold seeds together) plus the zero-shot answers."""
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for r in reports:
        cfg = config_from_dict(r["config"])
        key = json.dumps(asdict(replace(cfg, fold_seed=0)), sort_keys=True)
        groups.setdefault(key, {})[cfg.fold_seed] = r
    first = next(iter(groups.values()))
    cands = []
    for name in ZERO_SHOT:
        key = f"zero_shot:{name}"
        cands.append({"name": f"zero-shot {name}", "config": None, "rank": config_rank(None, name), "runs": [],
                      "folds": {s: [{p: f["votes"][p][key] for p in ("valid", "test")} for f in r["folds"]]
                                for s, r in first.items()}})
    for runs in groups.values():
        cfg = config_from_dict(next(iter(runs.values()))["config"])
        cands.append({"name": config_name(cfg), "config": asdict(replace(cfg, fold_seed=0)), "rank": config_rank(cfg),
                      "runs": [r.get("run_dir") for r in runs.values()],
                      "folds": {s: [{p: f["votes"][p]["trained"] for p in ("valid", "test")} for f in r["folds"]]
                                for s, r in runs.items()}})
    return cands


def select_runs(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`training.selection.select` over the configs of several ``cv`` reports (and the zero-shot answers)."""
    if any("valid" not in f["votes"] for r in reports for f in r["folds"]):
        raise UsageError("a run has no validation votes (holdout runs cannot be selected among)")
    cands = candidates_from_reports(reports)
    sel = select(cands, reports[0]["track_sources"], GENRES, rank=lambda c: c["rank"])
    chosen = next(c for c in cands if c["name"] == sel["chosen"])
    return {"rule": SELECTION_RULE, **sel, "chosen_runs": chosen["runs"]}


class FusedNet(nn.Module):
    """The exported model: ``wave (B, 3 s at 32 kHz) -> genre logits``, every backbone and the head inside.

    Each backbone computes its own front end from the same waveform; the head reads their embeddings
    side by side and a fitted temperature scales its logits. With the AudioSet backbone the graph also
    outputs its untrained detectors (``speech``: :class:`training.models.mobilenet.Detectors`), read from
    the AudioSet hidden layer as in ``audioset-zeroshot``.
    """

    def __init__(self, backbones: Sequence[Backbone], head: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.arch = "transfer:" + "+".join(b.name for b in backbones)
        self.labels = tuple(GENRES)
        self.frontend_params = backbones[0].frontend_params
        self.window_seconds = WINDOW_SECONDS
        self.backbones = nn.ModuleList(backbones)
        self.head = Calibrated(head, temperature)
        self.detector = Detectors() if backbones[0].name == "audioset" else None
        self.output_names = ("logits", *DETECTORS) if self.detector is not None else ("logits",)
        self.detectors = self.detector.descriptions if self.detector is not None else {}

    @property
    def window_samples(self) -> int:
        """Samples in one input window (at :data:`training.backbones.RATE`)."""
        return int(round(self.window_seconds * RATE))

    def frontend_description(self) -> dict:
        """``{"kind": "backbones", "backbones": {name: its front end}}`` (each backbone's own, in the graph)."""
        return {"kind": "backbones", "backbones": {b.name: b.frontend.describe() for b in self.backbones}}

    def forward(self, wave: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        embeddings = [b(wave) for b in self.backbones]
        logits = self.head(torch.cat(embeddings, dim=1))
        if self.detector is None:
            return logits
        hidden = self.backbones[0].network.net.classifier[2:4](embeddings[0])  # AudioSet Linear, Hardswish
        return (logits, *self.detector(hidden).unbind(1))


def train_final(data: Sequence[str | Path], cfg: TransferConfig, run_dir: str | Path, out_dir: str | Path,
                name: str, cv_reports: Sequence[dict[str, Any]] = (), selection: dict[str, Any] | None = None,
                cache_dir: str | Path = "cache") -> tuple[Path, Path]:
    """Train the head on every clip and export ``out_dir/name`` (epochs and temperature from its CV runs)."""
    backbones, tracks, feats = _setup(data, cfg, cache_dir)
    metrics: dict[str, Any] = {}
    temperature = track_t = 1.0
    if cv_reports:
        epochs = int(np.median([f["best_epoch"] for r in cv_reports for f in r["folds"]]))
        cfg = replace(cfg, head=replace(cfg.head, train=replace(cfg.head.train, epochs=max(1, epochs))))
        temperature = float(np.median([f["temperature"] for r in cv_reports for f in r["folds"]]))
        track_t = float(np.median([f["track_temperature"] for r in cv_reports for f in r["folds"]]))
        metrics = cv_metrics(cv_reports)
    if selection:
        metrics["selection"] = {
            "rule": selection["rule"], "chosen": selection["chosen"], "fold_seeds": selection["fold_seeds"],
            "nested_test": {src: {k: v[k] for k in ("acc", "macro_acc", "per_class")}
                            for src, v in selection["nested"]["test"].items()},
            "nested_picks": selection["nested"]["picks"],
            "candidates": {c["name"]: {"valid_macro_acc": c["valid_macro_acc"], "test_acc": c["test"]["all"]["acc"],
                                       "test_macro_acc": c["test"]["all"]["macro_acc"]}
                           for c in selection["candidates"]}}
    head, result = fit_head(backbones, tracks, feats, all_tracks_split(tracks), cfg, Path(run_dir))
    ordered = [backbones[n] for n in cfg.head.backbones]
    model = FusedNet(ordered, head, temperature).eval()
    training = {"method": f"frozen {', '.join(cfg.head.backbones)}; {config_name(cfg)} head trained on "
                          "cached embeddings of augmented 3-s windows; logits divided by a temperature fitted on "
                          "the CV validation folds (median over folds)",
                "data": {src: sum(t.source == src for t in tracks) for src in sorted({t.source for t in tracks})},
                "windows": int((feats.view > 0).sum()), "epochs": cfg.head.train.epochs,
                "seconds": round(result.seconds, 1), "temperature": temperature, "track_temperature": track_t,
                "config": asdict(cfg),
                "frontends": {b.name: asdict(b.frontend_params) for b in ordered}}
    provenance = {"source": "; ".join(b.provenance for b in ordered)}
    licence = "\n\n".join(dict.fromkeys(b.licence.strip() for b in ordered))
    return export_onnx(model, out_dir, name, metrics=metrics, training=training, provenance=provenance,
                       licence=licence, weights=[b.weights for b in ordered], track_temperature=track_t)


def cv_metrics(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metadata figures of a config's CV runs: pooled test folds per fold seed, averaged; calibration."""
    def figures(r: dict[str, Any], kind: str) -> dict[str, Any]:
        ev = r[kind]["evaluate"]
        return {src: {"track_acc": v["acc"], "track_macro_acc": v["macro_acc"], "per_class": v["per_class"],
                      "window_acc": ev["per_source"][src]["window_acc"] if src != "all" else ev["window"]["acc"]}
                for src, v in r[kind]["track"].items()}
    kinds = [k for k in reports[0] if k == "trained" or k.startswith("zero_shot:")]
    out = {"protocol": reports[0]["protocol"] + f"; fold seeds {[r['config']['fold_seed'] for r in reports]}, averaged",
           "cv_mean": {k: mean_nested([figures(r, k) for r in reports]) for k in kinds},
           "calibration": mean_nested([{p: {lvl: {"ece": r["calibration"][p][lvl]["ece"]} for lvl in ("window", "track")}
                                        for p in ("raw", "calibrated")} for r in reports])}
    out["cv_track_acc"] = out["cv_mean"]["trained"]["all"]["track_acc"]
    out["cv_track_macro_acc"] = out["cv_mean"]["trained"]["all"]["track_macro_acc"]
    return out


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    h, f = HeadConfig(), FeatureConfig()
    ap = argparse.ArgumentParser(prog="python -m training.transfer", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("cv", "holdout", "select", "final"))
    ap.add_argument("--data", action="append", default=[], metavar="DIR", help="GTZAN-layout folder (repeat)")
    ap.add_argument("--out", default="runs/transfer", help="run folder")
    ap.add_argument("--cache", default="cache", help="audio and feature cache folder")
    ap.add_argument("--kind", choices=KINDS, default=h.kind, help="head kind (see training.heads)")
    ap.add_argument("--backbones", default=",".join(h.backbones), help="comma-separated backbones the head reads")
    ap.add_argument("--hidden", type=int, default=h.hidden)
    ap.add_argument("--dropout", type=float, default=h.dropout)
    ap.add_argument("--l2sp", type=float, default=h.l2sp)
    ap.add_argument("--train-part", choices=("head", "last", "bias"), default=h.train_part)
    ap.add_argument("--protect-below", type=int, default=h.protect_below, metavar="N",
                    help="keep the AudioSet rows of genres with fewer than N training artists (0: train every row)")
    ap.add_argument("--train-views", choices=VIEWS, default=h.views, help="windows the head trains on")
    ap.add_argument("--rows", choices=("windows", "tracks"), default=h.rows,
                    help="train on augmented windows, or on each augmented view's mean over a track's windows")
    ap.add_argument("--epochs", type=int, default=h.train.epochs)
    ap.add_argument("--lr", type=float, default=h.train.lr)
    ap.add_argument("--batch-size", type=int, default=h.train.batch_size)
    ap.add_argument("--weight-decay", type=float, default=h.train.weight_decay)
    ap.add_argument("--label-smoothing", type=float, default=h.train.label_smoothing)
    ap.add_argument("--mixup", type=float, default=0.0, help="mixup alpha on embeddings (0 = off)")
    ap.add_argument("--balance", choices=BALANCES, default=TransferConfig.balance,
                    help="sampling of training windows: per genre, per genre and artist, or none")
    ap.add_argument("--views", type=int, default=f.views, help="augmented views per window (feature cache)")
    ap.add_argument("--folds", type=int, default=TransferConfig.folds, help="(cv) number of folds")
    ap.add_argument("--max-folds", type=int, help="(cv) run only the first N folds")
    ap.add_argument("--fold-seed", type=int, default=0, help="(cv) seed of the fold assignment")
    ap.add_argument("--test-source", help="(holdout) data source (folder name) to test on, training on the others")
    ap.add_argument("--cv", action="append", default=[], metavar="RUN", help="(select) CV run folder (repeat)")
    ap.add_argument("--selection", metavar="FILE", help="(final) selection.json from select")
    ap.add_argument("--models", default="models", help="(final) export folder")
    ap.add_argument("--name", default="fusion", help="(final) model name")
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("training").setLevel(logging.INFO)
    torch.set_num_threads(1)  # one core per job: the machine's two cores are shared
    head = replace(h, kind=args.kind, backbones=tuple(b for b in args.backbones.split(",") if b), hidden=args.hidden,
                   dropout=args.dropout, l2sp=args.l2sp, train_part=args.train_part, protect_below=args.protect_below,
                   views=args.train_views, rows=args.rows,
                   train=replace(h.train, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                 weight_decay=args.weight_decay,
                                 label_smoothing=args.label_smoothing))
    cfg = TransferConfig(head=head, features=replace(f, views=args.views), balance=args.balance,
                         mixup=args.mixup, folds=args.folds, fold_seed=args.fold_seed)
    try:
        head.check()
        if args.command != "select" and not args.data:
            raise UsageError(f"{args.command} needs --data DIR")
        if args.command == "cv":
            print("\n".join(summary_lines(run_cv(args.data, cfg, args.out, args.cache, args.max_folds))))
        elif args.command == "holdout":
            if not args.test_source:
                raise UsageError("holdout needs --test-source NAME")
            print("\n".join(summary_lines(run_holdout(args.data, args.test_source, cfg, args.out, args.cache))))
        elif args.command == "select":
            if not args.cv:
                raise UsageError("select needs --cv RUN (repeat)")
            sel = select_runs([{**_read_json(Path(run) / "cv.json"), "run_dir": run} for run in args.cv])
            Path(args.out).mkdir(parents=True, exist_ok=True)
            write_json(sel, Path(args.out) / "selection.json")
            print("\n".join(selection_table(sel)))
        else:
            reports, sel = [], None
            if args.selection:
                sel = _read_json(Path(args.selection))
                if sel["chosen_config"] is None:
                    raise UsageError(f"the selection chose {sel['chosen']}: ship that zero-shot model instead")
                cfg = config_from_dict(sel["chosen_config"])
                reports = [_read_json(Path(run) / "cv.json") for run in sel["chosen_runs"]]
            print(*train_final(args.data, cfg, args.out, args.models, args.name, reports, sel, args.cache))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StreamtagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
