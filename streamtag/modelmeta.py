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
import math
import os
import stat
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import strictjson
from .errors import UsageError

SCHEMA_VERSION = 1
"""Version of the metadata layout; bumped on incompatible changes."""

MODEL_RATES = (1000, 192000)
"""Model sample rates the runtime accepts (Hz)."""
MAX_WINDOW_SAMPLES = 1 << 22
"""Most samples in one model window (about 2 min at 32 kHz)."""
MAX_LABELS = 1000
"""Most labels a model may have."""
MAX_METADATA_BYTES = 16 << 20
"""Largest metadata file read (a FIFO or a huge file is refused before reading)."""

_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _check_fields(cls: type, d: dict[str, Any], where: str) -> None:
    """Raise :class:`UsageError` unless every scalar field of ``cls`` present in ``d`` has its declared type.

    ``int`` fields take JSON integers, ``float`` fields any finite JSON number (never a boolean).
    """
    for f in fields(cls):
        if f.name not in d or f.type not in _SCALARS:
            continue
        v, want = d[f.name], _SCALARS[f.type]
        ok = (isinstance(v, bool) if want is bool else
              isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) if want is float else
              isinstance(v, want) and not isinstance(v, bool))
        if not ok:
            kind = "a finite number" if want is float else f"a JSON {'integer' if want is int else want.__name__}"
            raise UsageError(f"bad model metadata: {where}{f.name} = {_short(v)} is not {kind}")


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _printable_name(v: str) -> bool:
    return 0 < len(v) <= 200 and v.isprintable()


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
    resampled_to: int = 0
    """When non-zero, the power spectrum is weighted by the magnitude response of the runtime's resampler
    (soxr HQ) from ``sample_rate`` down to this rate: a network trained on audio at that lower rate then
    sees the same band edge while the graph reads ``sample_rate`` audio. 0: no weighting."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FrontEnd":
        """Build from a metadata dict; unknown keys or wrong types are an error (:class:`UsageError`)."""
        if not isinstance(d, dict):
            raise UsageError(f"bad model metadata: frontend = {_short(d)} is not a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UsageError(f"model front end has unknown parameters: {', '.join(sorted(unknown))}")
        _check_fields(cls, d, "frontend.")
        fe = cls(**d)
        if not MODEL_RATES[0] <= fe.sample_rate <= MODEL_RATES[1]:
            raise UsageError(f"bad model metadata: frontend.sample_rate = {fe.sample_rate} "
                             f"(expected {MODEL_RATES[0]}..{MODEL_RATES[1]} Hz)")
        return fe


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
    track_temperature: float = 1.0
    """Calibration of a file's probabilities (``streamtag tag``): the mean of its window probabilities
    is sharpened as ``p ** (1 / T)`` and renormalised, ``T`` fitted on validation folds so that the
    file's confidence is right about as often as it says (window probabilities are calibrated inside
    the graph). 1 leaves them as they are."""
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
        """Parse and validate a metadata dict; raises :class:`UsageError` (one line) on a bad one.

        Every field must have its type (names and labels: printable strings; numbers finite);
        labels are unique, ``track_temperature`` is 0.05..20, ``window_seconds`` is 0.1..60 and the window at most
        :data:`MAX_WINDOW_SAMPLES` samples; ``version`` is not newer than this runtime's.
        """
        if not isinstance(d, dict):
            raise UsageError("bad model metadata: not a JSON object")
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("name", "arch", "labels", "window_seconds") if k not in d]
        unknown = sorted(set(d) - known)
        if missing or unknown:
            what = f"missing {', '.join(missing)}" if missing else f"unknown keys {', '.join(unknown)}"
            raise UsageError(f"bad model metadata: {what}")
        _check_fields(cls, d, "")
        for key in ("detectors", "metrics", "training", "provenance"):
            if key in d and not isinstance(d[key], dict):
                raise UsageError(f"bad model metadata: {key} = {_short(d[key])} is not a JSON object")
        if not all(_printable_name(k) and isinstance(v, str) for k, v in d.get("detectors", {}).items()):
            raise UsageError("bad model metadata: detectors must map printable output names to descriptions")
        labels = d["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) and _printable_name(x) for x in labels):
            raise UsageError("bad model metadata: labels must be a list of printable, non-empty strings")
        if not labels or len(labels) > MAX_LABELS or len(set(labels)) != len(labels):
            raise UsageError(f"bad model metadata: labels must be 1..{MAX_LABELS} unique names")
        for key in ("name", "arch", "input_name", "output_name"):
            if key in d and not _printable_name(d[key]):
                raise UsageError(f"bad model metadata: {key} = {_short(d[key])} is not a printable, non-empty name")
        if d.get("version", SCHEMA_VERSION) > SCHEMA_VERSION:
            raise UsageError(f"model metadata version {d['version']} is newer than this streamtag's "
                             f"({SCHEMA_VERSION}): upgrade streamtag")
        meta = cls(**{**d, "labels": tuple(labels), "frontend": FrontEnd.from_dict(d.get("frontend", {}))})
        if not 0.1 <= meta.window_seconds <= 60:
            raise UsageError(f"bad model metadata: window_seconds = {meta.window_seconds} (expected 0.1..60)")
        if meta.window_samples > MAX_WINDOW_SAMPLES:
            raise UsageError(f"bad model metadata: a {meta.window_seconds} s window at {meta.sample_rate} Hz is "
                             f"{meta.window_samples} samples (at most {MAX_WINDOW_SAMPLES})")
        if not 0.05 <= meta.track_temperature <= 20:
            raise UsageError(f"bad model metadata: track_temperature = {meta.track_temperature} (expected 0.05..20)")
        return meta

    @classmethod
    def load(cls, path: str | Path) -> "ModelMeta":
        """Read ``<name>.json``; raises :class:`UsageError` with one line (naming the file) on any problem.

        NaN, Infinity and numbers beyond float range are rejected: metadata flows into JSON output.
        """
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_METADATA_BYTES:
                raise UsageError(f"{path}: model metadata must be a regular file of at most "
                                 f"{MAX_METADATA_BYTES >> 20} MiB")
            d = strictjson.loads(Path(path).read_bytes())
        except FileNotFoundError:
            raise UsageError(f"{path}: model metadata not found") from None
        except OSError as exc:
            raise UsageError(f"{path}: unreadable model metadata ({exc.strerror})") from None
        except ValueError as exc:
            raise UsageError(f"{path}: unreadable model metadata ({exc})") from None
        try:
            return cls.from_dict(d)
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None


def shipped_models_dir() -> Path:
    """The shipped models: ``models/`` of the checkout this code runs from, else the copy an installed
    wheel carries inside the package (``streamtag/models/``, made by ``setup.py``)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "models").is_dir():
        return checkout / "models"
    return here / "models"


def models_dirs() -> list[Path]:
    """Folders searched for models: ``$STREAMTAG_MODELS`` (``:``-separated), then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("STREAMTAG_MODELS", "").split(os.pathsep) if p]
    dirs.append(shipped_models_dir())
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
