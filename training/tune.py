"""Hyper-parameter search with Optuna, on validation folds only (test folds are never loaded).

Each trial trains the first ``tune_folds`` splits with :func:`training.experiment.run_split`
(``test=False``) and scores the mean best validation track accuracy; a median pruner stops
trials that trail after a few epochs. The study lives in ``--storage`` (default: SQLite in the
run folder), so an interrupted search continues where it stopped.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import optuna

from streamtag.errors import UsageError

from .evaluate import write_json
from .experiment import RunConfig, run_split, tracks_and_labels
from .splits import make_splits

log = logging.getLogger(__name__)


def suggest(trial: optuna.Trial, rc: RunConfig) -> RunConfig:
    """A copy of ``rc`` with the searched parameters drawn for ``trial``."""
    rc = copy.deepcopy(rc)
    rc.train.lr = trial.suggest_float("lr", 1e-4, 3e-3, log=True)
    rc.train.weight_decay = trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True)
    rc.augment.mixup_alpha = trial.suggest_float("mixup_alpha", 0.0, 0.5)
    rc.augment.time_masks = trial.suggest_int("time_masks", 0, 3)
    rc.augment.freq_masks = trial.suggest_int("freq_masks", 0, 3)
    rc.model["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
    return rc


def tune(rc: RunConfig, run_dir: str | Path, trials: int, storage: str | None = None,
         tune_folds: int = 1) -> dict[str, Any]:
    """Run ``trials`` trials; writes and returns ``best.json`` (params, value, trial counts)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tracks, labels = tracks_and_labels(rc)
    splits = make_splits(tracks, rc.split, rc.folds, rc.seed, rc.split_dir)[:tune_folds]
    if any(not s.valid for s in splits):
        raise UsageError(f"--split {rc.split} has no validation tracks to tune on")
    storage = storage or f"sqlite:///{(run_dir / 'optuna.db').resolve()}"
    study = optuna.create_study(study_name=run_dir.name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=rc.seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2))

    def objective(trial: optuna.Trial) -> float:
        trc = suggest(trial, rc)
        values = []
        for f, split in enumerate(splits):
            def report(epoch: int, metrics: dict[str, float]) -> None:
                trial.report(metrics["valid_track_acc"], f * trc.train.epochs + epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            summary = run_split(trc, tracks, labels, split, run_dir / f"trial{trial.number}" / split.name,
                                on_epoch=report, test=False)
            values.append(summary["valid_track_acc"])
        return sum(values) / len(values)

    study.optimize(objective, n_trials=trials)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UsageError("no trial finished (all pruned or failed)")
    best = {"params": study.best_params, "valid_track_acc": study.best_value, "trial": study.best_trial.number,
            "complete": len(done), "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
            "splits": [s.name for s in splits], "storage": storage}
    write_json(best, run_dir / "best.json")
    return best
