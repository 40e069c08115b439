"""``python -m training train|cv|evaluate|ensemble|compare|tune|export``: the training command line.

Bad input gives one line on stderr and exit status 2 (see :mod:`streamtag.errors`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from streamtag.errors import StreamtagError, UsageError

from .splits import SPLIT_KINDS

log = logging.getLogger("training")

SPLIT_WORDS = {"group": "artist-grouped (no artist in two folds)", "stratified": "genre-stratified"}
"""How each k-fold kind is described in exported metadata."""


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="architecture (cnn, resnet18, resnet34, mixer, raw1d, wavelet, mobilenet)")
    p.add_argument("--config", help="TOML config, e.g. configs/train/<arch>.toml")
    p.add_argument("--data", action="append", default=[], metavar="DIR",
                   help="GTZAN-layout folder <genre>/<file>; repeat to train on several sources")
    p.add_argument("--split", help=f"split kind: {', '.join(SPLIT_KINDS)} (default: config, else group)")
    p.add_argument("--split-dir", help="folder with {train,valid,test}_filtered.txt for --split filtered")
    p.add_argument("--folds", type=int, help="number of folds for k-fold splits")
    p.add_argument("--epochs", type=int, help="override [train] epochs")
    p.add_argument("--batch-size", type=int, help="override [train] batch_size")
    p.add_argument("--lr", type=float, help="override [train] lr")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--init", help="start from these weights (checkpoint.pt, best.pt or a state_dict)")
    p.add_argument("--cache", help="decoded-audio cache folder (default: cache)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint(s)")
    p.add_argument("--out", help="run folder (default: runs/<arch>-<command>)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per task)."""
    ap = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train one split (or --split all for a final model) and test it")
    _run_options(p)
    p.add_argument("--fold", type=int, default=0, help="which split of a k-fold to train (default 0)")
    p = sub.add_parser("cv", help="cross-validate: train and test every fold, aggregate into cv.json")
    _run_options(p)
    p.add_argument("--max-folds", type=int, help="run only the first N folds (heavy models)")
    p = sub.add_parser("tune", help="Optuna search on validation folds (never the test folds)")
    _run_options(p)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--tune-folds", type=int, default=1, help="splits per trial (their validation folds are scored)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite in the run folder)")
    p = sub.add_parser("evaluate", help="score a trained run's model, or a pretrained arch, without training")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--run", help="run folder holding config.json and best.pt")
    model.add_argument("--arch", help="a model that needs no training (e.g. audioset-zeroshot)")
    p.add_argument("--config", help="TOML config for --arch (folds, seed, [model], [data])")
    p.add_argument("--data", action="append", default=[], metavar="DIR", help="data to score (default: the run's)")
    p.add_argument("--split", help=f"score the test part of each fold of this split ({', '.join(SPLIT_KINDS)}); "
                                  "default: every track")
    p.add_argument("--split-dir")
    p.add_argument("--folds", type=int, help="number of folds (default: the run's / config's)")
    p.add_argument("--seed", type=int, help="split seed (default: the run's / config's)")
    p.add_argument("--fold", type=int, help="only this fold")
    p.add_argument("--max-folds", type=int, help="only the first N folds")
    p.add_argument("--cache", help="decoded-audio cache folder")
    p.add_argument("--out", help="report folder (default: <run>/eval, or runs/<arch>-eval)")
    p = sub.add_parser("ensemble", help="combine runs' window probabilities fold by fold (same folds) and score them")
    p.add_argument("runs", nargs="+", help="run folders (cv, evaluate --split or train) with saved window predictions")
    p.add_argument("--vote", choices=("soft", "hard"), default="soft",
                   help="per window: mean of the members' probabilities (soft) or majority of their argmaxes (hard)")
    p.add_argument("--out", help="report folder (default: runs/ensemble-<vote>)")
    p = sub.add_parser("compare", help="Markdown table over run folders")
    p.add_argument("runs", nargs="+", help="run folders (cv.json or summary.json)")
    p.add_argument("--models", default="models", help="folder of exported models (ONNX size, CPU ms)")
    p.add_argument("--per-class", action="store_true",
                   help="add a table of per-genre track accuracy (pooled test folds), all tracks and the macro mean")
    p.add_argument("--out", help="write the table here as well as to stdout")
    p = sub.add_parser("export", help="export a run's best model to <out>/<name>.onnx + .json")
    p.add_argument("--run", required=True, action="append",
                   help="run folder; repeat to export the late fusion (mean probability) of several runs")
    p.add_argument("--name", help="model name (default: the run's arch, or the archs joined by +)")
    p.add_argument("--cv", help="cv (or ensemble) folder whose cv.json figures go into the metadata")
    p.add_argument("--out", default="models")
    p.add_argument("--max-mb", type=float, default=50.0, help="refuse a larger ONNX file (default 50)")
    return ap


def _run_config(args: argparse.Namespace):
    from .experiment import load_config
    from .models import ARCHS

    rc = load_config(args.config, args.arch)
    if args.arch:
        rc.arch = args.arch
    if rc.arch not in ARCHS:
        raise UsageError(f"unknown architecture {rc.arch!r} (known: {', '.join(ARCHS)})")
    rc.data = list(args.data)
    for name in ("split", "split_dir", "folds", "seed", "init"):
        if getattr(args, name) is not None:
            setattr(rc, name, getattr(args, name))
    over = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                              ("device", args.device), ("seed", args.seed)) if v is not None}
    rc.train = replace(rc.train, **over)
    if args.cache:
        rc.data_cfg = replace(rc.data_cfg, cache_dir=args.cache)
    for name in ("epochs", "batch_size", "folds"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {v}")
    if not rc.data:
        raise UsageError("no data folder given (use --data DIR, repeatable)")
    return rc


def _out(args: argparse.Namespace, rc) -> Path:
    return Path(args.out or f"runs/{rc.arch}-{args.command}")


def cmd_train(args: argparse.Namespace) -> int:
    from .experiment import run_split, tracks_and_labels
    from .splits import make_splits

    rc = _run_config(args)
    tracks, labels = tracks_and_labels(rc)
    splits = make_splits(tracks, rc.split, rc.folds, rc.seed, rc.split_dir)
    if not 0 <= args.fold < len(splits):
        raise UsageError(f"--fold {args.fold} out of range (this split has {len(splits)})")
    summary = run_split(rc, tracks, labels, splits[args.fold], _out(args, rc), resume=args.resume)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("test_confusion", "test_per_source")}))
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from .experiment import run_cv

    rc = _run_config(args)
    cv = run_cv(rc, _out(args, rc), max_folds=args.max_folds, resume=args.resume)
    keys = ("valid_track_acc", "test_window_acc", "test_track_soft_acc", "test_track_hard_acc")
    print(json.dumps({k: cv[k] for k in keys}))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import tune

    rc = _run_config(args)
    print(json.dumps(tune(rc, _out(args, rc), args.trials, args.storage, args.tune_folds)))
    return 0


def _load_run_model(run: Path):
    from .experiment import RunConfig, build, load_weights

    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise UsageError(f"{run}: no config.json (not a run folder)")
    d = json.loads(cfg_file.read_text())
    labels = d.pop("labels")
    for k in ("split_name", "n_train", "n_valid", "n_test"):
        d.pop(k, None)
    rc = RunConfig.from_dict({**d, "labels": labels, "init": None})
    model = build(rc, labels)
    weights = run / "best.pt"
    if not weights.is_file():
        raise UsageError(f"{run}: no best.pt (training did not finish an epoch)")
    load_weights(model, weights)
    return rc, labels, model


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import discover, label_set
    from .experiment import build, data_config, headline, load_config, score, score_folds

    if args.run:
        rc, labels, model = _load_run_model(Path(args.run))
        out = Path(args.out or Path(args.run) / "eval")
    else:
        rc = load_config(args.config, args.arch)
        rc.arch, labels, model = args.arch, None, None
        out = Path(args.out or f"runs/{args.arch}-eval")
    rc.data = list(args.data) or rc.data
    if not rc.data:
        raise UsageError("no data folder given (use --data DIR, repeatable)")
    for name in ("split", "split_dir", "folds", "seed"):
        if getattr(args, name) is not None:
            setattr(rc, name, getattr(args, name))
    if args.cache:
        rc.data_cfg = replace(rc.data_cfg, cache_dir=args.cache)
    if args.split:
        rc.labels = list(labels) if labels else None
        model = model or build(rc, label_set(discover(rc.data)))
        cv = score_folds(model, rc, out, max_folds=args.max_folds, fold=args.fold)
        print(json.dumps({k: cv[k] for k in ("test_window_acc", "test_track_soft_acc", "test_track_hard_acc")}))
        return 0
    tracks = discover(rc.data, labels)
    labels = labels or label_set(tracks)
    model = model or build(rc, labels)
    report = score(model, tracks, labels, data_config(rc, model), out, rc.arch)
    print(json.dumps({k: v for k, v in headline(report).items() if k != "test_confusion"}))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, per_class_table

    table = compare(args.runs, args.models)
    if args.per_class:
        table += "\n" + per_class_table(args.runs)
    if args.out:
        Path(args.out).write_text(table)
    sys.stdout.write(table)
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from .ensemble import ensemble

    cv = ensemble(args.runs, args.vote, args.out or f"runs/ensemble-{args.vote}")
    keys = ("valid_track_acc", "test_window_acc", "test_track_soft_acc", "test_track_hard_acc")
    print(json.dumps({"vote": args.vote, **{k: cv[k]["mean"] for k in keys}, "best_member": cv.get("best_member"),
                      "gain_over_best_member": cv.get("gain_over_best_member")}))
    return 0


def _training_record(run: Path, rc) -> dict:
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return {"data": [Path(p).name for p in rc.data], "split": rc.split, "epochs_run": summary.get("epochs_run"),
            "train_seconds": summary.get("train_seconds"), "config": rc.to_dict()}


def cmd_export(args: argparse.Namespace) -> int:
    from .ensemble import LateFusion
    from .export import export_onnx

    if args.max_mb <= 0:
        raise UsageError(f"--max-mb must be positive, got {args.max_mb}")
    runs = [Path(r) for r in args.run]
    loaded = [_load_run_model(run) for run in runs]
    if len(loaded) == 1:
        rc, _, model = loaded[0]
        training = _training_record(runs[0], rc)
    else:
        model = LateFusion([m for _, _, m in loaded])
        training = {"late_fusion": [{"run": str(run), **_training_record(run, rc)} for run, (rc, _, _) in zip(runs, loaded)]}
    name = args.name or model.arch
    metrics: dict = {}
    if args.cv:
        cv_file = Path(args.cv) / "cv.json"
        if not cv_file.is_file():
            raise UsageError(f"{args.cv}: no cv.json")
        cv = json.loads(cv_file.read_text())
        kind = SPLIT_WORDS.get(cv["split"], cv["split"])
        metrics = {"protocol": f"{kind} {cv['folds_total']}-fold CV, {len(cv['folds'])} fold(s) run; test fold i, "
                               f"validation fold i+1; data {', '.join(Path(p).name for p in cv['data'])}",
                   **{k: cv[k] for k in ("valid_track_acc", "test_window_acc", "test_track_soft_acc",
                                         "test_track_hard_acc", "test_track_macro_f1", "per_source")}}
    onnx_path, _ = export_onnx(model, args.out, name, metrics=metrics, training=training,
                               max_bytes=int(args.max_mb * 2**20))
    if len(runs) == 1:  # how `compare` finds the run's exported model (a fusion belongs to no one run)
        (runs[0] / "export.json").write_text(json.dumps({"name": name, "onnx": str(onnx_path)}) + "\n")
    print(onnx_path)
    return 0


COMMANDS = {"train": cmd_train, "cv": cmd_cv, "tune": cmd_tune, "evaluate": cmd_evaluate, "ensemble": cmd_ensemble,
            "compare": cmd_compare, "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return COMMANDS[args.command](args)
    except StreamtagError as exc:
        print(f"training: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("training: interrupted", file=sys.stderr)
        return 130
