"""ONNX Runtime inference: load a model, check its graph against its metadata, turn windows into probabilities."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .errors import UsageError
from .modelmeta import resolve_model

PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
"""``--provider`` names and the ONNX Runtime execution providers they mean."""


def choose_providers(provider: str) -> list[str]:
    """ONNX Runtime provider list for ``auto|cuda|cpu`` (auto = CUDA when this onnxruntime has it)."""
    available = ort.get_available_providers()
    if provider == "auto":
        provider = "cuda" if PROVIDERS["cuda"] in available else "cpu"
    if provider not in PROVIDERS:
        raise UsageError(f"--provider {provider}: expected auto, cuda or cpu")
    if PROVIDERS[provider] not in available:
        raise UsageError(f"--provider {provider}: not available in this onnxruntime "
                         f"(available: {', '.join(available)})")
    return [PROVIDERS[provider]] + ([PROVIDERS["cpu"]] if provider != "cpu" else [])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (the runtime reports probabilities over the model's labels)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z, dtype=np.float32)
    return e / e.sum(axis=1, keepdims=True)


class Engine:
    """One loaded model: ``run(windows (n, window_samples)) -> probs (n, n_labels)``; :meth:`infer` adds the
    detector outputs (``speech``) of models that have them."""

    def __init__(self, spec: str | None, provider: str = "auto"):
        self.path, self.meta = resolve_model(spec)
        self.name = self.meta.name
        wanted = choose_providers(provider)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting between runs: spinning pool threads took the CPU the decoders and the rest of
        # the machine needed (tag on 2 cores: a third less CPU and wall time without it)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"model {self.name}: cannot load {self.path.name} ({first[:200]})") from None
        running = self.session.get_providers()
        if provider == "cuda" and PROVIDERS["cuda"] not in running:
            raise UsageError(f"model {self.name}: --provider cuda requested but onnxruntime fell back to CPU")
        self.provider = "cuda" if PROVIDERS["cuda"] in running else "cpu"
        self._check_graph()
        self.run(np.zeros((2, self.meta.window_samples), dtype=np.float32))  # warm-up, also checks the output

    def _check_graph(self) -> None:
        meta, name = self.meta, self.name
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or inputs[0].name != meta.input_name:
            got = ", ".join(i.name for i in inputs)
            raise UsageError(f"model {name}: graph input is {got!r}, metadata says {meta.input_name!r}")
        shape = inputs[0].shape
        if len(shape) != 2:
            raise UsageError(f"model {name}: graph input has shape {shape}, expected (batch, samples)")
        if isinstance(shape[0], int):
            raise UsageError(f"model {name}: graph batch axis is fixed to {shape[0]} (export with a dynamic batch)")
        if isinstance(shape[1], int) and shape[1] != meta.window_samples:
            raise UsageError(f"model {name}: graph takes {shape[1]} samples, metadata says "
                             f"{meta.window_seconds} s x {meta.sample_rate} Hz = {meta.window_samples}")
        if meta.output_name not in [o.name for o in outputs]:
            raise UsageError(f"model {name}: graph has no output {meta.output_name!r}")
        missing = [d for d in meta.detectors if d not in [o.name for o in outputs]]
        if missing:
            raise UsageError(f"model {name}: metadata lists detector output(s) the graph lacks: {', '.join(missing)}")
        out = next(o for o in outputs if o.name == meta.output_name)
        if len(out.shape) != 2 or (isinstance(out.shape[1], int) and out.shape[1] != len(meta.labels)):
            raise UsageError(f"model {name}: graph output has shape {out.shape}, "
                             f"metadata has {len(meta.labels)} labels")

    def run(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities (softmax of the logits) for a batch of windows."""
        return self.infer(windows)[0]

    def infer(self, windows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Class probabilities and each detector output (``{name: (n,) probabilities}``, see
        ``ModelMeta.detectors``) for a batch of windows, from one graph run."""
        names = [self.meta.output_name, *self.meta.detectors]
        try:
            logits, *extra = self.session.run(names, {self.meta.input_name: windows})
        except Exception as exc:  # a graph that loads but cannot run this input
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"model {self.name}: inference failed ({first[:200]})") from None
        if logits.shape != (len(windows), len(self.meta.labels)):
            raise UsageError(f"model {self.name}: graph output has shape {logits.shape}, "
                             f"expected ({len(windows)}, {len(self.meta.labels)}) for the labels")
        if not np.isfinite(logits).all():  # inputs are sanitised to +-1: a model that does this is broken
            raise UsageError(f"model {self.name}: produced NaN or infinite logits")
        detected = {}
        for name, out in zip(self.meta.detectors, extra):
            if out.size != len(windows):
                raise UsageError(f"model {self.name}: detector output {name!r} has shape {out.shape}, "
                                 f"expected ({len(windows)},)")
            if not np.isfinite(out).all():
                raise UsageError(f"model {self.name}: detector output {name!r} is NaN or infinite")
            detected[name] = np.clip(out.reshape(-1).astype(np.float32), 0.0, 1.0)
        return softmax(logits.astype(np.float32, copy=False)), detected

