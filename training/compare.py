"""Markdown comparison of runs: accuracy ± std over folds, parameters, ONNX size, CPU time per window.

A run folder holds ``cv.json`` (from ``cv``) or ``summary.json`` (from ``train``). ONNX size and
CPU ms per window come from the exported model's metadata: ``<models>/<name>.json`` where
``name`` is the one recorded in the run's ``export.json``, else the run's architecture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from streamtag.errors import UsageError

from .experiment import aggregate


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``cv.json`` or ``summary.json`` (as a one-fold CV), plus its folder name."""
    d = Path(run_dir)
    for name in ("cv.json", "summary.json"):
        f = d / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"{f}: unreadable ({exc})") from None
            if name == "summary.json":
                cfg = d / "config.json"
                labels = json.loads(cfg.read_text()).get("labels", []) if cfg.is_file() else []
                data = {**aggregate([data], labels), "arch": data.get("arch")}
            data["run"] = d.name
            return data
    raise UsageError(f"{d}: no cv.json or summary.json (not a finished run folder)")


def _model_meta(run_dir: Path, arch: str, models_dir: Path) -> dict[str, Any] | None:
    name = arch
    exp = run_dir / "export.json"
    if exp.is_file():
        name = json.loads(exp.read_text()).get("name", arch)
    f = models_dir / f"{name}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def _pm(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None or (isinstance(stat["mean"], float) and math.isnan(stat["mean"])):
        return "–"
    return f"{100 * stat['mean']:.1f} ± {100 * stat.get('std', 0.0):.1f}"


def compare(run_dirs: Sequence[str | Path], models_dir: str | Path = "models") -> str:
    """A Markdown table, one row per run."""
    if not run_dirs:
        raise UsageError("compare needs at least one run folder")
    sources = sorted({s for r in run_dirs for s in load_run(r).get("per_source", {})})
    head = ["run", "arch", "folds", "valid track acc", "test window acc", "test track acc (soft)",
            "test track acc (hard)", "track macro F1",
            *[f"{s} {level} acc" for s in sources for level in ("window", "track")],
            "params", "ONNX MB", "CPU ms/window", "s/epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in run_dirs:
        run = load_run(r)
        meta = _model_meta(Path(r), run.get("arch", ""), Path(models_dir))
        onnx_mb = f"{meta['provenance']['onnx_bytes'] / 2**20:.1f}" if meta else "–"
        cpu_ms = f"{meta['metrics']['cpu_ms_per_window']['batch1']:.1f}" if meta else "–"
        eps = run.get("epoch_seconds", {}).get("mean")
        row = [run["run"], run.get("arch", "?"), str(len(run.get("folds", []))), _pm(run.get("valid_track_acc")),
               _pm(run.get("test_window_acc")), _pm(run.get("test_track_soft_acc")), _pm(run.get("test_track_hard_acc")),
               _pm(run.get("test_track_macro_f1")),
               *[_pm(run.get("per_source", {}).get(s, {}).get(k)) for s in sources
                 for k in ("window_acc", "track_soft_acc")],
               f"{run.get('params', 0) / 1e6:.2f} M", onnx_mb, cpu_ms,
               f"{eps:.0f}" if isinstance(eps, (int, float)) and not math.isnan(eps) else "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def per_class_table(run_dirs: Sequence[str | Path]) -> str:
    """Markdown: track-level (soft vote) accuracy per genre, pooled over each run's test folds, then over
    every track (``all``) and the mean over the genres that have tracks (``macro``)."""
    runs = [load_run(r) for r in run_dirs]
    labels = next((r["labels"] for r in runs if r.get("labels")), [])
    lines = ["| run | " + " | ".join(labels) + " | all | macro |", "|" + "---|" * (len(labels) + 3)]
    for run in runs:
        cm = run.get("confusion") or []
        rows = [(cm[i][i], sum(cm[i])) for i in range(len(labels)) if i < len(cm)]
        cells = [f"{100 * c / n:.0f} ({c}/{n})" if n else "–" for c, n in rows]
        cells += ["–"] * (len(labels) - len(cells))
        correct, total = sum(c for c, _ in rows), sum(n for _, n in rows)
        rates = [c / n for c, n in rows if n]
        cells += [f"{100 * correct / total:.1f} ({correct}/{total})" if total else "–",
                  f"{100 * sum(rates) / len(rates):.1f}" if rates else "–"]
        lines.append(f"| {run['run']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
