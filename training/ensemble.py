"""Ensembles of trained runs: their window probabilities combined, scored on the same folds.

``python -m training ensemble RUN... --vote soft|hard`` reads each member run's saved window
predictions (``predictions.npz`` of every test fold and ``valid/`` validation fold, written by
:func:`training.experiment.score`) and combines them window by window:

- ``soft``: the mean of the members' softmax probabilities (late fusion);
- ``hard``: the majority of the members' argmaxes (ties broken by the mean probability).

The combined windows are then voted per track both ways, as for a single model, so the ensemble
gets the same report, ``cv.json`` and ``compare`` row as any run. Members must have been run on
the same data, folds and windows (same hop); the ensemble is set against its best member, the one
with the highest *validation* track accuracy (the one a user would have picked without it).

:class:`LateFusion` is the soft ensemble as one model, for ``python -m training export``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from streamtag.errors import UsageError

from .evaluate import PREDICTIONS, Predictions, SavedPredictions, evaluate, load_predictions, plot_confusion, \
    save_predictions, softmax, write_json
from .experiment import aggregate, headline

log = logging.getLogger(__name__)

VOTES = ("soft", "hard")
"""How members are combined at each window."""

START_TOLERANCE = 0.05
"""Seconds two members' windows may differ by and still count as the same window (rates round differently)."""


def combine(members: Sequence[SavedPredictions], vote: str, names: Sequence[str] | None = None) -> Predictions:
    """The ensemble's window predictions (logits = log of the combined scores) over aligned members.

    Raises :class:`UsageError` when the members disagree on labels, tracks or windows.
    """
    if vote not in VOTES:
        raise UsageError(f"unknown vote {vote!r} (use {' or '.join(VOTES)})")
    names = list(names or [f"member {i}" for i in range(len(members))])
    first = members[0]
    for name, m in zip(names[1:], members[1:]):
        if m.labels != first.labels:
            raise UsageError(f"{name}: labels {', '.join(m.labels)} differ from {names[0]}'s {', '.join(first.labels)}")
        if [(t.source, t.key) for t in m.tracks] != [(t.source, t.key) for t in first.tracks]:
            raise UsageError(f"{name}: scored other tracks than {names[0]} (not the same data and folds)")
        if m.preds.track_index.shape != first.preds.track_index.shape \
                or not np.array_equal(m.preds.track_index, first.preds.track_index) \
                or np.abs(m.window_start - first.window_start).max(initial=0.0) > START_TOLERANCE:
            raise UsageError(f"{name}: its windows differ from {names[0]}'s (score every member with the same "
                             f"hop_seconds)")
    probs = np.stack([softmax(m.preds.logits.astype(np.float64)) for m in members])  # (members, windows, classes)
    mean = probs.mean(axis=0)
    if vote == "soft":
        combined = mean
    else:
        n_cls = mean.shape[1]
        combined = np.eye(n_cls)[probs.argmax(axis=2)].mean(axis=0) + 1e-3 * mean  # the mean breaks ties only
        combined /= combined.sum(axis=1, keepdims=True)
    return Predictions(np.log(np.clip(combined, 1e-12, None)).astype(np.float32), first.preds.labels,
                       first.preds.track_index)


def _fold_dirs(run: Path) -> list[tuple[str, Path]]:
    """``(split name, folder)`` of each scored fold of a run: a ``cv``/``evaluate --split`` run's folds, or a ``train`` run."""
    cv_file, summary = run / "cv.json", run / "summary.json"
    if cv_file.is_file():
        cv = json.loads(cv_file.read_text())
        folds = [(f["split"], run / f"fold{i}") for i, f in enumerate(cv.get("folds", []))]
    elif summary.is_file():
        folds = [(json.loads(summary.read_text())["split"], run)]
    else:
        raise UsageError(f"{run}: no cv.json or summary.json (not a finished run folder)")
    for _, d in folds:
        if not (d / PREDICTIONS).is_file():
            raise UsageError(f"{d}: no {PREDICTIONS} (scored before window predictions were kept: re-score it with "
                             f"`python -m training evaluate --run {d} --split ...`)")
    return folds


def _member_figures(run: Path) -> dict[str, Any]:
    """A member's own headline figures (``cv.json`` holds mean/std per figure, ``summary.json`` plain values)."""
    cv_file = run / "cv.json"
    data = json.loads((cv_file if cv_file.is_file() else run / "summary.json").read_text())
    figures = {k: data.get(k) for k in ("valid_track_acc", "test_window_acc", "test_track_soft_acc",
                                        "test_track_hard_acc")}
    return {"run": str(run), "arch": data.get("arch"), "params": data.get("params", 0),
            **{k: v.get("mean") if isinstance(v, dict) else v for k, v in figures.items()}}


def _load(d: Path, name: str) -> SavedPredictions:
    try:
        return load_predictions(d / PREDICTIONS)
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"{d / PREDICTIONS}: unreadable ({exc}); member {name}") from None


def _score(members: list[SavedPredictions], names: list[str], vote: str, out: Path, title: str) -> dict[str, Any]:
    preds = combine(members, vote, names)
    first = members[0]
    report = evaluate(preds, first.tracks, first.labels)
    report["title"] = title
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "report.json")
    save_predictions(preds, first.tracks, first.labels, first.window_start, out / PREDICTIONS)
    plot_confusion(report["track_soft"]["confusion"], first.labels, out / "confusion.png", f"{title} track (soft vote)")
    return report


def ensemble(runs: Sequence[str | Path], vote: str, out: str | Path) -> dict[str, Any]:
    """Combine ``runs`` fold by fold (test and validation folds); writes ``out/cv.json`` and per-fold reports.

    Returns the ``cv.json`` dict, which adds ``members`` (each member's own figures), ``best_member``
    (highest validation track accuracy) and ``gain_over_best_member`` (test track accuracy, soft vote).
    """
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise UsageError("an ensemble needs at least two runs")
    if vote not in VOTES:
        raise UsageError(f"unknown vote {vote!r} (use {' or '.join(VOTES)})")
    out = Path(out)
    names = [r.name for r in runs]
    folds = [_fold_dirs(r) for r in runs]
    splits = [s for s, _ in folds[0]]
    for name, f in zip(names[1:], folds[1:]):
        if [s for s, _ in f] != splits:
            raise UsageError(f"{name}: folds {', '.join(s for s, _ in f)} differ from {names[0]}'s {', '.join(splits)}")
    member_figs = [_member_figures(r) for r in runs]
    params = sum(int(m["params"] or 0) for m in member_figs)
    title = f"ensemble ({vote}) of {' + '.join(names)}"
    summaries = []
    for i, split in enumerate(splits):
        dirs = [f[i][1] for f in folds]
        test = _score([_load(d, n) for d, n in zip(dirs, names)], names, vote, out / f"fold{i}", f"{title} {split}")
        summary = {"split": split, "arch": "ensemble", "params": params, **headline(test)}
        if all((d / "valid" / PREDICTIONS).is_file() for d in dirs):
            valid = _score([_load(d / "valid", n) for d, n in zip(dirs, names)], names, vote, out / f"fold{i}" / "valid",
                           f"{title} {split} validation")
            summary["valid_track_acc"] = valid["track_soft"]["acc"]
        write_json(summary, out / f"fold{i}" / "summary.json")
        summaries.append(summary)
    labels = list(_load(folds[0][0][1], names[0]).labels)
    cv = aggregate(summaries, labels)
    first_cv = json.loads((runs[0] / "cv.json").read_text()) if (runs[0] / "cv.json").is_file() else {}
    cv.update(arch="ensemble", vote=vote, split=first_cv.get("split", "?"), folds_total=first_cv.get("folds_total", 1),
              data=first_cv.get("data", []), n_tracks=first_cv.get("n_tracks"), members=member_figs)
    ranked = [m for m in member_figs if m["valid_track_acc"] is not None]
    if ranked:
        best = max(ranked, key=lambda m: m["valid_track_acc"])
        cv["best_member"] = best["run"]
        cv["gain_over_best_member"] = cv["test_track_soft_acc"]["mean"] - best["test_track_soft_acc"]
    write_json(cv, out / "cv.json")
    plot_confusion(cv["confusion"], labels, out / "confusion.png", f"{title}, track (soft vote)")
    return cv


class LateFusion(nn.Module):
    """The soft ensemble as one model: ``log(mean_i softmax(member_i(wave)))`` (softmax of it is the mean).

    Members must share labels, sample rate and window; each keeps its own front end in the graph.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise UsageError("late fusion needs at least two models")
        first = members[0]
        for m in members[1:]:
            if tuple(m.labels) != tuple(first.labels):
                raise UsageError(f"cannot fuse {first.arch} and {m.arch}: different labels")
            if m.frontend_params.sample_rate != first.frontend_params.sample_rate or m.window_samples != first.window_samples:
                raise UsageError(f"cannot fuse {first.arch} and {m.arch}: different sample rate or window (one graph "
                                 f"takes one waveform)")
        self.members = nn.ModuleList(members)
        self.arch = "+".join(m.arch for m in members)
        self.labels = tuple(first.labels)
        self.frontend_params = first.frontend_params
        self.window_seconds = first.window_seconds

    @property
    def window_samples(self) -> int:
        """Samples in one input window (every member's)."""
        return self.members[0].window_samples

    def frontend_description(self) -> dict:
        """``{"kind": "late-fusion", "members": [each member's front end]}``."""
        return {"kind": "late-fusion", "members": [m.frontend_description() for m in self.members]}

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        logp = torch.stack([torch.log_softmax(m(wave), dim=-1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - float(np.log(len(self.members)))
