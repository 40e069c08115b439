"""Tables and figures of a transfer selection for ``models/REPORT.md``, read from its CV runs.

``python -m training.report --selection runs/sel/selection.json --out models/report`` prints Markdown:
the rows to compare (both zero-shot answers, the best candidate of each backbone set on validation,
the chosen one and the nested estimate) per genre and per source at track and window level, the
calibration table of the chosen config before and after its temperature, and writes the chosen
config's pooled test-fold confusion matrix as a PNG.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .evaluate import plot_confusion
from .models.mobilenet import GTZAN_GENRES as GENRES
from .selection import mean_nested


def _reports(runs: Sequence[str]) -> list[dict[str, Any]]:
    return [json.loads((Path(r) / "cv.json").read_text()) for r in runs]


def window_accuracy(reports: Sequence[dict[str, Any]], kind: str) -> dict[str, float]:
    """Window accuracy over all tracks and per source, pooled test folds, mean over fold seeds."""
    def one(r: dict[str, Any]) -> dict[str, float]:
        ev = r[kind]["evaluate"]
        return {"all": ev["window"]["acc"], **{s: v["window_acc"] for s, v in ev["per_source"].items()}}
    return mean_nested([one(r) for r in reports])


def rows_to_compare(sel: dict[str, Any]) -> list[dict[str, Any]]:
    """Zero-shot rows, the validation-best candidate of every backbone set, and the chosen one."""
    cands = sel["candidates"]
    rows = [c for c in cands if c["config"] is None]
    by_set: dict[tuple[str, ...], dict[str, Any]] = {}
    for c in cands:
        if c["config"] is not None:
            key = tuple(c["config"]["head"]["backbones"])
            if key not in by_set or c["valid_macro_acc"] > by_set[key]["valid_macro_acc"]:
                by_set[key] = c
    rows += sorted(by_set.values(), key=lambda c: (len(c["config"]["head"]["backbones"]), c["name"]))
    return rows


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.0f}"


def genre_table(rows: Sequence[tuple[str, dict[str, Any]]], source: str = "all") -> list[str]:
    """Per-genre track accuracy (%) of each row's pooled test folds on ``source``, with acc and macro."""
    head = ["row", "acc", "macro", *GENRES]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, test in rows:
        t = test[source]
        out.append("| " + " | ".join([name, f"{t['acc']:.3f}", f"{t['macro_acc']:.3f}",
                                      *(_pct(t["per_class"].get(g)) for g in GENRES)]) + " |")
    return out


def source_table(rows: Sequence[tuple[str, dict[str, Any], dict[str, float] | None]]) -> list[str]:
    """Track accuracy / macro and window accuracy per source of each row."""
    sources = [s for s in rows[0][1] if s != "all"]
    head = ["row", *[f"{s} {m}" for s in ["all", *sources] for m in ("track", "macro", "window")]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, test, win in rows:
        cells = []
        for s in ["all", *sources]:
            cells += [f"{test[s]['acc']:.3f}", f"{test[s]['macro_acc']:.3f}",
                      f"{win[s]:.3f}" if win and s in win else "–"]
        out.append("| " + " | ".join([name, *cells]) + " |")
    return out


def reliability_table(report: dict[str, Any], level: str = "window") -> list[str]:
    """Reliability before and after the temperatures at ``window`` or ``track`` level (pooled test folds of one run)."""
    raw, cal = report["calibration"]["raw"][level], report["calibration"]["calibrated"][level]
    unit = "windows" if level == "window" else "tracks"
    out = [f"ECE ({level}) {raw['ece']:.3f} -> {cal['ece']:.3f}", "",
           f"| confidence bin | {unit} before | confidence | accuracy | {unit} after | confidence | accuracy |",
           "|---|---|---|---|---|---|---|"]
    bins = {b["bin"]: b for b in raw["bins"]}
    after = {b["bin"]: b for b in cal["bins"]}
    for name in sorted(set(bins) | set(after)):
        cells = []
        for table in (bins, after):
            b = table.get(name)
            cells += [str(b["n"]), f"{b['confidence']:.2f}", f"{b['accuracy']:.2f}"] if b else ["0", "–", "–"]
        out.append("| " + " | ".join([name, *cells]) + " |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.splitlines()[0])
    ap.add_argument("--selection", required=True, help="selection.json from `python -m training.transfer select`")
    ap.add_argument("--out", default="models/report", help="folder for the PNG figures")
    args = ap.parse_args(argv)
    sel = json.loads(Path(args.selection).read_text())
    chosen = next(c for c in sel["candidates"] if c["name"] == sel["chosen"])
    reports = _reports(chosen["runs"])
    rows = rows_to_compare(sel)
    lines = [f"Chosen: **{sel['chosen']}** (validation macro {chosen['valid_macro_acc']:.3f})", ""]
    lines += ["Track level (soft vote), pooled test folds, mean over fold seeds "
              f"{sel['fold_seeds']}; per-genre figures in %.", ""]
    named = [(c["name"], c["test"]) for c in rows] + [("nested estimate (choice included)", sel["nested"]["test"])]
    lines += genre_table(named) + [""]
    for source in [s for s in chosen["test"] if s != "all"]:
        lines += [f"{source}:", ""] + genre_table(named, source) + [""]
    windows = []
    for c in rows:
        kind = "trained" if c["config"] is not None else "zero_shot:" + c["name"].removeprefix("zero-shot ")
        runs = c["runs"] or chosen["runs"]
        windows.append((c["name"], c["test"], window_accuracy(_reports(runs), kind)))
    windows.append(("nested estimate", sel["nested"]["test"], None))
    lines += ["Per source, track and window level:", ""] + source_table(windows) + [""]
    lines += [f"Calibration of the chosen config (fold seed {reports[0]['config']['fold_seed']}, test folds):", ""]
    lines += reliability_table(reports[0], "window") + [""] + reliability_table(reports[0], "track")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cm = np.sum([r["trained"]["track"]["all"]["confusion"] for r in reports], axis=0)
    plot_confusion(cm, GENRES, out / "fusion-cv-confusion.png",
                   title=f"{sel['chosen']}: pooled test folds, {len(reports)} fold seeds")
    nested_cm = sel["nested"]["test"]["all"].get("confusion")
    if nested_cm is not None:
        plot_confusion(np.rint(np.asarray(nested_cm) * len(sel["fold_seeds"])).astype(int), GENRES,
                       out / "fusion-nested-confusion.png", title="nested estimate: pooled test folds, all seeds")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
