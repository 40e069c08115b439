"""Train/validation/test splits by *track* (before windowing), so no clip straddles two sets.

Every k-fold split uses fold ``i`` as test and fold ``i+1`` as the validation fold that early
stopping and tuning look at; the test fold is never seen before the final evaluation.
"""

from __future__ import annotations

import csv
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from streamtag.errors import UsageError

from .data import Track, track_key

log = logging.getLogger(__name__)

SPLIT_KINDS = ("group", "stratified", "filtered", "all", "csv:<path>")
"""Accepted ``--split`` values."""

FILTERED_NAMES = ("train", "valid", "test")
"""Parts of the fault-filtered GTZAN split (``<part>_filtered.txt``)."""


@dataclass(frozen=True)
class Split:
    """Indices into a track list; the three parts are disjoint."""

    name: str
    train: tuple[int, ...]
    valid: tuple[int, ...]
    test: tuple[int, ...]


def _folds_to_splits(fold_of: np.ndarray, k: int, prefix: str) -> list[Split]:
    """Fold ``i`` is the test set, fold ``(i+1) % k`` the validation set, the rest trains."""
    idx = np.arange(fold_of.size)
    out = []
    for i in range(k):
        v = (i + 1) % k
        out.append(Split(
            name=f"{prefix}{i}",
            train=tuple(int(j) for j in idx[(fold_of != i) & (fold_of != v)]),
            valid=tuple(int(j) for j in idx[fold_of == v]),
            test=tuple(int(j) for j in idx[fold_of == i]),
        ))
    return out


def _check_k(k: int, n_units: int, what: str) -> None:
    if k < 3:
        raise UsageError(f"--folds must be at least 3 (test, validation and training folds), got {k}")
    if k > n_units:
        raise UsageError(f"--folds {k} is more than the {n_units} {what} available")


def _test_folds(splitter, y: np.ndarray, groups: np.ndarray | None) -> list[np.ndarray]:
    """Test indices of each fold; sklearn's refusals become one-line usage errors."""
    with warnings.catch_warnings():  # genres rarer than k (or one-artist genres) only thin some folds
        warnings.simplefilter("ignore", UserWarning)
        try:
            return [test for _, test in splitter.split(np.zeros(len(y)), y, groups)]
        except ValueError as exc:
            raise UsageError(f"cannot make {splitter.get_n_splits()} folds of this data: {exc}") from None


def _kfold(splitter, tracks: Sequence[Track], groups: np.ndarray | None, k: int, prefix: str) -> list[Split]:
    y = np.array([t.genre for t in tracks])
    fold_of = np.empty(len(tracks), dtype=int)
    for i, test in enumerate(_test_folds(splitter, y, groups)):
        fold_of[test] = i
    return _folds_to_splits(fold_of, k, prefix)


def stratified_kfold(tracks: Sequence[Track], k: int, seed: int = 0) -> list[Split]:
    """Genre-stratified k-fold over tracks (ignores artists)."""
    _check_k(k, len(tracks), "tracks")
    return _kfold(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), tracks, None, k, "strat")


def group_kfold(tracks: Sequence[Track], k: int, seed: int = 0) -> list[Split]:
    """Genre-stratified k-fold where an artist group never spans two folds."""
    groups = np.array([t.group for t in tracks])
    _check_k(k, len(set(groups.tolist())), "artist groups")
    return _kfold(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed), tracks, groups, k, "group")


def _read_list(path: Path) -> list[str]:
    """Keys (``genre/stem``) named in a split list; extensions are ignored."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: unreadable split list ({exc})") from None
    keys = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(track_key(line))
    return keys


def filtered_split(tracks: Sequence[Track], split_dir: str | Path) -> Split:
    """The fault-filtered split from ``{train,valid,test}_filtered.txt``, matched by ``genre/stem``.

    Listed tracks that are not on disk are counted and logged (a subset such as gtzan-mini has
    only a tenth of them); tracks in no list are left out, as the split intends.
    """
    d = Path(split_dir)
    by_key: dict[str, list[int]] = {}
    for i, t in enumerate(tracks):
        by_key.setdefault(t.key, []).append(i)
    parts: dict[str, tuple[int, ...]] = {}
    for name in FILTERED_NAMES:
        f = d / f"{name}_filtered.txt"
        if not f.is_file():
            raise UsageError(f"{f}: split list not found")
        keys = _read_list(f)
        present = [i for k in keys for i in by_key.get(k, [])]
        missing = sum(1 for k in keys if k not in by_key)
        if missing:
            log.info("%s: %d of %d listed tracks are not in the data", f.name, missing, len(keys))
        parts[name] = tuple(sorted(present))
    for name in ("train", "test"):
        if not parts[name]:
            raise UsageError(f"filtered split: none of the tracks in {name}_filtered.txt is in the data")
    return Split(name="filtered", **parts)


def csv_split(tracks: Sequence[Track], path: str | Path) -> list[Split]:
    """Splits from a CSV: ``path,split`` (train/valid/test) gives one split, ``path,fold`` a k-fold.

    ``path`` is matched as ``genre/file`` with or without extension; rows naming absent tracks are ignored.
    """
    f = Path(path)
    try:
        with f.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise UsageError(f"{f}: split CSV not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{f}: unreadable split CSV ({exc})") from None
    if not rows or "path" not in rows[0] or not ({"split", "fold"} & set(rows[0])):
        raise UsageError(f"{f}: split CSV needs columns path and split (train/valid/test) or fold")
    by_key = {t.key: i for i, t in enumerate(tracks)}
    assign: dict[int, str] = {}
    col = "split" if "split" in rows[0] else "fold"
    for r in rows:
        i = by_key.get(track_key(r["path"]))
        if i is not None:
            assign[i] = r[col].strip()
    if col == "split":
        bad = sorted(set(assign.values()) - set(FILTERED_NAMES))
        if bad:
            raise UsageError(f"{f}: unknown split names {', '.join(bad)} (use train, valid, test)")
        parts = {n: tuple(sorted(i for i, s in assign.items() if s == n)) for n in FILTERED_NAMES}
        if not parts["train"] or not parts["test"]:
            raise UsageError(f"{f}: the split names no training or no test track present in the data")
        return [Split(name=f.stem, **parts)]
    try:
        folds = sorted({int(v) for v in assign.values()})
    except ValueError:
        raise UsageError(f"{f}: fold column must hold integers") from None
    _check_k(len(folds), len(folds), "folds")
    fold_of = np.full(len(tracks), -1)
    for i, v in assign.items():
        fold_of[i] = folds.index(int(v))
    splits = _folds_to_splits(fold_of, len(folds), f"{f.stem}-")
    # Tracks the CSV does not mention belong to no fold: drop them from training too.
    return [Split(s.name, tuple(i for i in s.train if fold_of[i] >= 0), s.valid, s.test) for s in splits]


def all_tracks_split(tracks: Sequence[Track]) -> Split:
    """Final-model split: every track trains; no validation, no test."""
    return Split("all", tuple(range(len(tracks))), (), ())


def make_splits(tracks: Sequence[Track], kind: str, folds: int = 5, seed: int = 0,
                split_dir: str | Path | None = None) -> list[Split]:
    """Dispatch a ``--split`` value to the functions above."""
    if kind == "group":
        return group_kfold(tracks, folds, seed)
    if kind == "stratified":
        return stratified_kfold(tracks, folds, seed)
    if kind == "filtered":
        if split_dir is None:
            raise UsageError("--split filtered needs --split-dir (folder with {train,valid,test}_filtered.txt)")
        return [filtered_split(tracks, split_dir)]
    if kind == "all":
        return [all_tracks_split(tracks)]
    if kind.startswith("csv:"):
        return csv_split(tracks, kind[4:])
    raise UsageError(f"unknown --split {kind!r} (use {', '.join(SPLIT_KINDS)})")
