"""Export a :class:`GenreNet` to one self-contained ONNX file plus its ``ModelMeta`` JSON.

The graph takes ``waveform (batch, window_samples)`` and returns ``logits``, front end inside.
Every export is checked: ONNX Runtime (CPU) must reproduce torch's logits on real audio windows
within ``tolerance``, otherwise the files are deleted and :class:`ExportParityError` is raised;
a model using an operation the exporter cannot convert raises :class:`NotExportableError` naming it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import re
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from streamtag.audio import load_mono
from streamtag.errors import RuntimeFailure
from streamtag.modelmeta import ModelMeta

from .models import GenreNet
from .models.mobilenet import DERIVED_ARCHS, licence_text, shared_dir, weights_path

OPSET = 18
MAX_BYTES = 50 * 2**20
"""Largest ONNX file :func:`export_onnx` writes by default (shipped models stay small)."""
TOLERANCE = 1e-4
"""Largest allowed |ORT - torch| logit difference."""

REFERENCE_CLIPS = ("gtzan-mini/blues/blues.00000.flac", "gtzan-mini/classical/classical.00001.flac",
                   "gtzan-mini/metal/metal.00002.flac", "gtzan-mini/reggae/reggae.00004.flac")
"""Real clips (under the shared data folder) whose windows check every export."""

log = logging.getLogger(__name__)


class ExportParityError(RuntimeFailure):
    """The exported graph does not reproduce the torch model."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def reference_windows(sample_rate: int, window_samples: int, per_clip: int = 2) -> np.ndarray:
    """``(n, window_samples)`` float32 windows from :data:`REFERENCE_CLIPS`, spread over each clip."""
    windows = []
    for rel in REFERENCE_CLIPS:
        x = load_mono(shared_dir() / "data" / rel, sample_rate)
        for start in np.linspace(0, len(x) - window_samples, per_clip + 2)[1:-1].astype(int):
            windows.append(x[start:start + window_samples])
    return np.stack(windows).astype(np.float32)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _ort_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cpu_ms_per_window(path: Path, window_samples: int, batch: int, repeats: int = 10) -> float:
    """Median CPU wall time per window (ms) of ONNX Runtime on ``batch`` windows at once."""
    sess = _ort_session(path)
    x = np.random.default_rng(0).standard_normal((batch, window_samples)).astype(np.float32) * 0.1
    sess.run(None, {"waveform": x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {"waveform": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000 / batch)


class NotExportableError(RuntimeFailure):
    """The model uses an operation the ONNX exporter cannot convert (named in the message)."""


_MISSING_OP = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'[^>]*>\.(?: Failure message: ([^\n]+))?")
_FAILED_NODE = re.compile(r"target=torch\.ops\.([\w.]+)")


def _failing_op(exc: BaseException) -> str:
    """The operator an exporter error is about, with the exporter's reason, as one line."""
    text = "\n".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e is not None)
    m = _MISSING_OP.search(text)
    if m:
        return f"no ONNX conversion for operator {m.group(1)}" + (f" ({m.group(2).strip()})" if m.group(2) else "")
    m = _FAILED_NODE.search(text)
    if m:
        return f"cannot convert operator {m.group(1)}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first[:200]


def _write_graph(model: GenreNet, path: Path) -> None:
    example = torch.zeros(2, model.window_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (example,), str(path), input_names=["waveform"],
                              output_names=list(getattr(model, "output_names", ("logits",))),
                              dynamic_shapes={"wave": {0: torch.export.Dim("batch")}}, opset_version=OPSET,
                              dynamo=True, external_data=False, verbose=False)
        except torch.onnx.OnnxExporterError as exc:
            raise NotExportableError(f"{path.name}: not exportable to ONNX: {_failing_op(exc)}") from None
    onnx.checker.check_model(str(path))


def check_parity(model: GenreNet, onnx_path: Path, windows: np.ndarray, tolerance: float = TOLERANCE) -> float:
    """Max |ORT - torch| over ``windows`` (batch of all, and the first alone) and over every output
    (a model with ``output_names`` returns a tuple); raises when above ``tolerance``."""
    with torch.no_grad():
        want = model(torch.from_numpy(windows))
    want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
    sess = _ort_session(onnx_path)
    got = sess.run(None, {"waveform": windows})
    single = sess.run(None, {"waveform": windows[:1]})
    shapes_ok = len(got) == len(want) and all(g.shape == w.shape for g, w in zip(got, want))
    diff = float(max(max(np.abs(g - w).max(), np.abs(s - w[:1]).max()) for g, s, w in zip(got, single, want)))
    if not shapes_ok or not np.isfinite(diff) or diff > tolerance:
        raise ExportParityError(f"{onnx_path.name}: ONNX Runtime differs from torch by {diff:.3g} "
                                f"(> {tolerance:g}) on real audio; export discarded")
    return diff


def export_onnx(model: GenreNet, out_dir: str | Path, name: str, *, metrics: dict[str, Any] | None = None,
                training: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                licence: str = "", weights: Sequence[str | Path] = (), track_temperature: float = 1.0,
                windows: np.ndarray | None = None,
                tolerance: float = TOLERANCE, max_bytes: int | None = MAX_BYTES) -> tuple[Path, Path]:
    """Write ``out_dir/<name>.onnx`` and ``<name>.json``, verified against torch; returns both paths.

    ``weights``: pretrained files the model came from (their SHA-256 goes into provenance). For a
    model derived from the EfficientAT weights, ``licence`` and ``weights`` default to its MIT notice
    and weights file. ``track_temperature``: the file-level calibration (``ModelMeta.track_temperature``).
    ``windows``: real audio ``(n, window_samples)`` at the model rate for the parity check
    (default: :func:`reference_windows`). Parity failures or an oversized file delete both files.
    """
    model = model.cpu().eval()
    if model.arch in DERIVED_ARCHS:
        licence = licence or licence_text()
        weights = weights or [weights_path()]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, json_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    if windows is None:
        windows = reference_windows(model.frontend_params.sample_rate, model.window_samples)
    try:
        _write_graph(model, onnx_path)
        stray = [p for p in out_dir.glob(f"{name}.onnx.*")] + [p for p in out_dir.glob(f"{name}.onnx_data")]
        if stray:
            raise RuntimeFailure(f"{onnx_path.name}: exporter wrote external data ({stray[0].name})")
        if max_bytes is not None and onnx_path.stat().st_size > max_bytes:
            raise RuntimeFailure(f"{onnx_path.name}: {onnx_path.stat().st_size / 2**20:.1f} MB exceeds "
                                 f"{max_bytes / 2**20:.0f} MB")
        max_diff = check_parity(model, onnx_path, np.ascontiguousarray(windows, dtype=np.float32), tolerance)
    except BaseException:
        for p in [onnx_path, json_path, *out_dir.glob(f"{name}.onnx.*")]:
            p.unlink(missing_ok=True)
        raise
    timing = {"batch1": round(cpu_ms_per_window(onnx_path, model.window_samples, 1), 2),
              "batch8": round(cpu_ms_per_window(onnx_path, model.window_samples, 8), 2),
              "provider": "CPUExecutionProvider", "threads": "onnxruntime default"}
    meta = ModelMeta(
        name=name, arch=model.arch, labels=model.labels, window_seconds=model.window_seconds,
        frontend=model.frontend_params, detectors=dict(getattr(model, "detectors", {})),
        track_temperature=track_temperature,
        metrics={**(metrics or {}), "cpu_ms_per_window": timing},
        training=dict(training or {}),
        provenance={
            **(provenance or {}),
            "weights": {Path(w).name: sha256(w) for w in weights},
            "parameters": sum(p.numel() for p in model.parameters()),
            "graph_frontend": model.frontend_description(),
            "onnx_sha256": sha256(onnx_path), "onnx_bytes": onnx_path.stat().st_size,
            "parity_max_abs_diff": max_diff, "parity_windows": int(len(windows)),
            "exported_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "git_commit": _git_commit(), "opset": OPSET, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        licence=licence,
    )
    meta.save(json_path)
    log.info("exported %s (%.1f MB, parity %.2g, %.1f ms/window)", onnx_path, onnx_path.stat().st_size / 2**20,
             max_diff, timing["batch1"])
    return onnx_path, json_path
