"""Model metadata: the JSON that travels beside every ``models/<name>.onnx``.

Shape after YAMNet's ``params.py``: :class:`FrontEnd` holds what training fixed (change any of
it and the model's answers are meaningless); :class:`ModelMeta` adds labels, window, metrics,
provenance and licence. The graph itself takes ``waveform`` ``(batch, window_samples)`` float32
mono at ``frontend.sample_rate`` and returns ``logits`` ``(batch, len(labels))``; the log-mel
front end described here is computed *inside* the graph. What is safe to change at run time
(hop, vote, confirm, thresholds) lives in :mod:`streamtag.settings`, not here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import UsageError

SCHEMA_VERSION = 1
"""Version of the metadata layout; bumped on incompatible changes."""


@dataclass(frozen=True)
class FrontEnd:
    """Log-mel front-end parameters, fixed by training and exported inside the ONNX graph.

    Defaults are the AudioSet MobileNetV3 (EfficientAT) front end.
    """

    sample_rate: int = 32000
    """Model sample rate in Hz; every source is mixed to mono and soxr-resampled to it."""
    n_fft: int = 1024
    """FFT size."""
    win_length: int = 800
    """Analysis window length in samples (zero-padded to ``n_fft``)."""
    hop_length: int = 320
    """STFT hop in samples."""
    window: str = "hann_symmetric"
    """``hann_symmetric`` or ``hann_periodic``."""
    center: bool = True
    """Pad ``n_fft // 2`` on both sides before framing."""
    pad_mode: str = "reflect"
    """Padding when ``center``: ``reflect`` (torch's default) or ``constant`` (librosa 0.11's)."""
    preemphasis: float = 0.97
    """Pre-emphasis coefficient ``y[n] = x[n] - k x[n-1]``; 0 disables it."""
    n_mels: int = 128
    """Number of mel bands."""
    fmin: float = 0.0
    """Lowest mel band edge in Hz."""
    fmax: float = 15000.0
    """Highest mel band edge in Hz."""
    mel_scale: str = "kaldi"
    """Filter-bank shape: ``kaldi`` (triangles in mel), ``slaney`` or ``htk`` (librosa)."""
    log_offset: float = 1e-5
    """``log(mel + log_offset)``."""
    norm_shift: float = 4.5
    """Normalisation ``(logmel + norm_shift) / norm_scale``."""
    norm_scale: float = 5.0
    """See ``norm_shift``."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrontEnd":
        """Build from a metadata dict; unknown keys are an error (a newer format)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UsageError(f"model front end has unknown parameters: {', '.join(sorted(unknown))}")
        return cls(**d)


@dataclass(frozen=True)
class ModelMeta:
    """Everything the runtime and ``streamtag models`` need to know about one exported model."""

    name: str
    """Short name; the ONNX file is ``<name>.onnx``."""
    arch: str
    """Architecture: ``cnn``, ``resnet18``, ``resnet34``, ``mixer``, ``mobilenet``, ``audioset-zeroshot``."""
    labels: tuple[str, ...]
    """Class names, in the order of the graph's output."""
    window_seconds: float
    """Length of one input window in seconds."""
    frontend: FrontEnd
    """Front end compiled into the graph (fixed by training)."""
    input_name: str = "waveform"
    """Graph input: ``(batch, window_samples)`` float32."""
    output_name: str = "logits"
    """Graph output: ``(batch, len(labels))`` float32 logits."""
    detectors: dict[str, str] = field(default_factory=dict)
    """Optional extra graph outputs: output name -> description. Each is ``(batch,)`` float32, the
    probability that the window holds that sound. The runtime reads ``speech`` (the sigmoid of AudioSet
    class "Speech") for its ``speech`` state; a model without it never reports speech."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Evaluation figures, e.g. ``{"cv_track_acc": 0.81, ...}`` and the protocol that made them."""
    training: dict[str, Any] = field(default_factory=dict)
    """Training data description, hyper-parameters, epochs, time."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where it came from: pretrained weights, commit, date, exporter versions."""
    licence: str = ""
    """Licence notice that must travel with the model (e.g. EfficientAT's MIT notice)."""
    version: int = SCHEMA_VERSION
    """Metadata layout version."""

    @property
    def sample_rate(self) -> int:
        """The model's sample rate (from the front end)."""
        return self.frontend.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples in one input window at the model rate."""
        return int(round(self.window_seconds * self.frontend.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    def save(self, path: str | Path) -> None:
        """Write as pretty JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMeta":
        """Parse and validate a metadata dict; raises :class:`UsageError` on a bad one."""
        try:
            d = dict(d)
            d["frontend"] = FrontEnd.from_dict(d.get("frontend", {}))
            d["labels"] = tuple(str(x) for x in d["labels"])
            meta = cls(**d)
        except UsageError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad model metadata ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta.detectors, dict) or not all(
                isinstance(k, str) and k and isinstance(v, str) for k, v in meta.detectors.items()):
            raise UsageError("bad model metadata: detectors must map output names to descriptions")
        if not meta.labels or len(set(meta.labels)) != len(meta.labels):
            raise UsageError("bad model metadata: labels must be a non-empty list of unique names")
        if not 0.1 <= meta.window_seconds <= 60:
            raise UsageError(f"bad model metadata: window_seconds={meta.window_seconds}")
        return meta

    @classmethod
    def load(cls, path: str | Path) -> "ModelMeta":
        """Read ``<name>.json``; raises :class:`UsageError` with one line on any problem."""
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UsageError(f"{path}: model metadata not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: unreadable model metadata ({exc})") from None
        if not isinstance(d, dict):
            raise UsageError(f"{path}: model metadata must be a JSON object")
        return cls.from_dict(d)


def models_dirs() -> list[Path]:
    """Folders searched for models: ``$STREAMTAG_MODELS`` (``:``-separated), then the shipped ``models/``."""
    dirs = [Path(p) for p in os.environ.get("STREAMTAG_MODELS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "models")
    return dirs


def default_model_name() -> str:
    """Name in the first ``DEFAULT`` file found in :func:`models_dirs` (chosen by ``models/REPORT.md``'s rule)."""
    for d in models_dirs():
        f = d / "DEFAULT"
        if f.is_file():
            return f.read_text().strip()
    raise UsageError("no default model: no models/DEFAULT file found (give --model)")


def installed_models() -> list[str]:
    """Names of the models in :func:`models_dirs` (``<name>.onnx`` files), sorted, without duplicates."""
    return sorted({f.stem for d in models_dirs() if d.is_dir() for f in d.glob("*.onnx")})


def resolve_model(spec: str | None) -> tuple[Path, ModelMeta]:
    """Turn ``--model`` (a name, a ``.onnx`` path or ``None`` for the default) into (onnx path, metadata)."""
    spec = spec or default_model_name()
    p = Path(spec)
    if p.suffix == ".onnx" or p.suffix == ".json" or os.sep in spec:
        onnx = p.with_suffix(".onnx")
        if not onnx.is_file():
            raise UsageError(f"{spec}: model file not found")
        return onnx, ModelMeta.load(onnx.with_suffix(".json"))
    for d in models_dirs():
        onnx = d / f"{spec}.onnx"
        if onnx.is_file():
            return onnx, ModelMeta.load(onnx.with_suffix(".json"))
    raise UsageError(f"unknown model {spec!r} (known: {', '.join(installed_models()) or 'none'})")
