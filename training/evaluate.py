"""Evaluation: window- and track-level scores, per-class and per-source breakdowns, plots, JSON.

A track's label is voted from all of its windows two ways: *soft* (argmax of the mean softmax)
and *hard* (majority of window argmaxes, ties broken by the mean softmax). Macro scores
average over the classes present in the ground truth of the evaluated set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .data import Track

PREDICTIONS = "predictions.npz"
"""File beside each ``report.json`` holding the window logits it was computed from (for ensembles)."""


@dataclass
class Predictions:
    """Model outputs over a set of windows."""

    logits: np.ndarray
    """``(N, C)`` float."""
    labels: np.ndarray
    """``(N,)`` true class index per window."""
    track_index: np.ndarray
    """``(N,)`` index of each window's track (into the evaluated track list)."""


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: str | torch.device = "cpu") -> Predictions:
    """Run ``model`` in eval mode over a loader of ``(x, y[, track_index])`` batches."""
    model.eval()
    logits, ys, ts = [], [], []
    for batch in loader:
        x, y = batch[0].to(device), batch[1]
        logits.append(model(x).float().cpu().numpy())
        ys.append(np.asarray(y))
        ts.append(np.asarray(batch[2]) if len(batch) > 2 else np.arange(len(y)) + sum(len(a) for a in ys[:-1]))
    return Predictions(np.concatenate(logits), np.concatenate(ys), np.concatenate(ts))


@dataclass
class SavedPredictions:
    """What :func:`save_predictions` wrote: window predictions plus the tracks and labels they index."""

    preds: Predictions
    tracks: list[Track]
    labels: tuple[str, ...]
    window_start: np.ndarray
    """``(N,)`` start of each window in seconds."""


def save_predictions(preds: Predictions, tracks: Sequence[Track], labels: Sequence[str], window_start: np.ndarray,
                     path: str | Path) -> None:
    """Write window logits, their tracks (key, source, genre, group, path) and labels to ``path`` (``.npz``)."""
    np.savez_compressed(
        path, logits=preds.logits.astype(np.float32), labels=preds.labels, track_index=preds.track_index,
        window_start=np.asarray(window_start, dtype=np.float64), class_names=np.array(list(labels)),
        track_path=np.array([str(t.path) for t in tracks]), track_genre=np.array([t.genre for t in tracks]),
        track_source=np.array([t.source for t in tracks]), track_group=np.array([t.group for t in tracks]),
        track_key=np.array([t.key for t in tracks]))


def load_predictions(path: str | Path) -> SavedPredictions:
    """Read a :func:`save_predictions` file."""
    with np.load(path) as z:
        tracks = [Track(path=Path(p), genre=str(g), source=str(s), group=str(gr), key=str(k))
                  for p, g, s, gr, k in zip(z["track_path"], z["track_genre"], z["track_source"], z["track_group"],
                                            z["track_key"])]
        return SavedPredictions(Predictions(z["logits"], z["labels"], z["track_index"]), tracks,
                                tuple(str(c) for c in z["class_names"]), z["window_start"])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def track_votes(preds: Predictions) -> dict[str, np.ndarray]:
    """Per-track ``track`` ids, true ``labels``, ``soft`` and ``hard`` voted predictions."""
    probs = softmax(preds.logits)
    tracks = np.unique(preds.track_index)
    n_cls = probs.shape[1]
    soft, hard, true = [], [], []
    for t in tracks:
        m = preds.track_index == t
        mean = probs[m].mean(axis=0)
        counts = np.bincount(probs[m].argmax(axis=1), minlength=n_cls).astype(float)
        soft.append(int(mean.argmax()))
        hard.append(int(np.argmax(counts + mean * 1e-3)))  # the mean breaks ties only
        true.append(int(preds.labels[m][0]))
    return {"track": tracks, "labels": np.array(true), "soft": np.array(soft), "hard": np.array(hard)}


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of matches (0 for an empty set)."""
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean()) if len(y_true) else 0.0


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class accuracy (recall) and confusion matrix."""
    present = sorted(set(np.asarray(y_true).tolist()))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    per_class = {labels[c]: float(cm[c, c] / cm[c].sum()) for c in range(len(labels)) if cm[c].sum()}
    return {"acc": accuracy(y_true, y_pred), "macro_precision": float(p), "macro_recall": float(r),
            "macro_f1": float(f), "per_class_acc": per_class, "n": int(len(y_true)), "confusion": cm.tolist()}


def evaluate(preds: Predictions, tracks: Sequence[Track], labels: Sequence[str]) -> dict[str, Any]:
    """Full report: window, track-soft and track-hard scores, per-source breakdown, per-track predictions."""
    votes = track_votes(preds)
    win_pred = preds.logits.argmax(axis=1)
    report: dict[str, Any] = {
        "labels": list(labels),
        "window": scores(preds.labels, win_pred, labels),
        "track_soft": scores(votes["labels"], votes["soft"], labels),
        "track_hard": scores(votes["labels"], votes["hard"], labels),
        "per_source": {},
    }
    win_source = np.array([tracks[i].source for i in preds.track_index])
    trk_source = np.array([tracks[i].source for i in votes["track"]])
    for src in sorted(set(trk_source.tolist())):
        w, t = win_source == src, trk_source == src
        report["per_source"][src] = {
            "n_tracks": int(t.sum()),
            "window_acc": accuracy(preds.labels[w], win_pred[w]),
            "track_soft_acc": accuracy(votes["labels"][t], votes["soft"][t]),
            "track_hard_acc": accuracy(votes["labels"][t], votes["hard"][t]),
        }
    report["tracks"] = [
        {"key": tracks[i].key, "source": tracks[i].source, "genre": tracks[i].genre,
         "soft": labels[s], "hard": labels[h]}
        for i, s, h in zip(votes["track"], votes["soft"], votes["hard"])
    ]
    return report


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = "") -> None:
    """Save a confusion-matrix PNG (rows: truth, columns: prediction, cells: counts)."""
    plt = _pyplot()
    m = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=90)
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_history(history: Sequence[dict[str, float]], path: str | Path) -> None:
    """Save a learning-curve PNG: losses and validation accuracies per epoch."""
    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=90)
    for key in ("train_loss", "valid_loss"):
        if any(key in h for h in history):
            a.plot(ep, [h.get(key, np.nan) for h in history], label=key)
    for key in ("train_acc", "valid_acc", "valid_track_acc"):
        if any(key in h for h in history):
            b.plot(ep, [h.get(key, np.nan) for h in history], label=key)
    a.set_xlabel("epoch")
    b.set_xlabel("epoch")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_cv_history(histories: Sequence[Sequence[dict[str, float]]], path: str | Path, title: str = "") -> None:
    """Save one PNG of every fold's learning curves: losses, and training vs validation-track accuracy."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=80)
    for i, history in enumerate(histories):
        ep, colour = [h["epoch"] for h in history], f"C{i}"
        a.plot(ep, [h.get("train_loss", np.nan) for h in history], color=colour)
        a.plot(ep, [h.get("valid_loss", np.nan) for h in history], color=colour, ls="--")
        b.plot(ep, [h.get("train_acc", np.nan) for h in history], color=colour, label=f"fold {i}")
        b.plot(ep, [h.get("valid_track_acc", np.nan) for h in history], color=colour, ls="--")
    a.set_title("loss (solid: train, dashed: validation)", fontsize=9)
    b.set_title("accuracy (solid: train crops, dashed: validation tracks)", fontsize=9)
    for ax in (a, b):
        ax.set_xlabel("epoch")
    b.set_ylim(0, 1)
    b.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_json(obj: Any, path: str | Path) -> None:
    """Write pretty JSON (numpy scalars converted)."""
    Path(path).write_text(json.dumps(obj, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
