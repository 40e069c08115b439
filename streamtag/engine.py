"""ONNX Runtime inference: load a model, check its graph against its metadata, turn windows into probabilities.

The graph is loaded as shipped, with its ``STFT`` nodes rewritten in memory as Conv + MatMul
(:mod:`streamtag.stft`; checked against the original graph at load, which is kept if they disagree).
Every run goes through an IO binding: the windows are read where the caller keeps them (no copy on
the CPU provider) and the outputs land in buffers allocated once. On CUDA the batch is padded to a
power of two (each size warmed up at load, so cuDNN never searches its algorithms mid-stream) and
:meth:`Engine.batch_buffer` gives page-locked host memory for the copies to the device.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from .errors import UsageError
from .modelmeta import resolve_model

PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
"""``--provider`` names and the ONNX Runtime execution providers they mean."""

LOWERING_TOLERANCE = 1e-3
"""Largest difference (relative to the largest logit, at least 1) allowed between the rewritten and the
original graph's outputs on the load-time check."""

_OPT_LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
               "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
               "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


@dataclass(frozen=True)
class EngineOptions:
    """How the ONNX Runtime session is set up (defaults: what ``bench/bench_engine.py`` measured best)."""

    threads: int = 0
    """Intra-op threads (0: ONNX Runtime's choice, one per core)."""
    lower_stft: bool = True
    """Rewrite the graph's STFT nodes as Conv + MatMul (:mod:`streamtag.stft`)."""
    optimization: str = "all"
    """ONNX Runtime graph optimisation level: ``basic``, ``extended`` or ``all``."""
    mem_arena: bool = True
    """ONNX Runtime's CPU memory arena (off: every run allocates and frees its tensors)."""
    io_binding: bool = True
    """Run through an IO binding (windows read in place, outputs into buffers allocated once)."""


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


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


class Engine:
    """One loaded model: ``run(windows (n, window_samples)) -> probs (n, n_labels)``; :meth:`infer` adds the
    detector outputs (``speech``) of models that have them.

    ``max_batch`` is the most windows a caller passes at once (more still works: the output buffers grow).
    """

    def __init__(self, spec: str | None, provider: str = "auto", max_batch: int = 32,
                 options: EngineOptions = EngineOptions()):
        self.path, self.meta = resolve_model(spec)
        self.name = self.meta.name
        self.options = options
        wanted = choose_providers(provider)
        self.lowered = 0
        """STFT nodes computed by the rewritten graph (0: the graph as shipped)."""
        model = self._graph() if options.lower_stft else None
        self.session = self._session(model if model is not None else str(self.path), wanted)
        running = self.session.get_providers()
        if provider == "cuda" and PROVIDERS["cuda"] not in running:
            raise UsageError(f"model {self.name}: --provider cuda requested but onnxruntime fell back to CPU")
        self.provider = "cuda" if PROVIDERS["cuda"] in running else "cpu"
        self._check_graph()
        self._names = [self.meta.output_name, *self.meta.detectors]
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        self._widths = [len(self.meta.labels)] + [None if len(shapes[d]) == 1 else 1 for d in self.meta.detectors]
        """Columns of each output (None: a ``(batch,)`` output)."""
        self._max_batch = max_batch
        self._local = threading.local()  # an IO binding and output buffers per calling thread
        if model is not None:
            self._check_lowering(wanted)
        self._warm_up(max_batch)

    # -- loading ----------------------------------------------------------------------------------
    def _options(self) -> ort.SessionOptions:
        o = self.options
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = o.threads
        opts.inter_op_num_threads = 1  # the graph runs sequentially: no inter-op pool to keep
        opts.graph_optimization_level = _OPT_LEVELS[o.optimization]
        opts.enable_cpu_mem_arena = o.mem_arena
        # no busy-waiting between runs: spinning pool threads took the CPU the decoders and the rest of
        # the machine needed (tag on 2 cores: a third less CPU and wall time without it)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    def _session(self, model: bytes | str, providers: list[str]) -> ort.InferenceSession:
        try:
            return ort.InferenceSession(model, sess_options=self._options(), providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions for bad files
            raise UsageError(f"model {self.name}: cannot load {self.path.name} ({_first_line(exc)})") from None

    def _graph(self) -> bytes | None:
        """The model with its STFT nodes lowered, serialised; None when there is nothing to lower (or the
        file is not a graph the ``onnx`` package reads: the session load then reports it)."""
        import onnx

        from .stft import lower_stft

        try:
            model = onnx.load(str(self.path))
            lowered = lower_stft(model)
        except Exception:  # not a readable graph, or one shape inference rejects: use the file as shipped
            return None
        if not lowered:
            return None
        self.lowered = lowered
        return model.SerializeToString()

    def _check_lowering(self, providers: list[str]) -> None:
        """Compare the rewritten graph with the original on a test signal; keep the original if they differ."""
        rng = np.random.default_rng(0)
        n = self.meta.window_samples
        t = np.arange(n) / self.meta.sample_rate
        x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n),
                      0.5 * rng.standard_normal(n)]).astype(np.float32)
        original = self._session(str(self.path), providers)
        want = original.run([self.meta.output_name], {self.meta.input_name: x})[0]
        got = self._run(x, len(x))[0]
        if np.abs(got - want).max() > LOWERING_TOLERANCE * max(1.0, float(np.abs(want).max())):
            self.session, self.lowered = original, 0
            self._local = threading.local()

    def _warm_up(self, max_batch: int) -> None:
        """Run each batch shape the session will see once (on CUDA every padded size; on CPU two windows)."""
        sizes = sorted({self._padded(n) for n in range(1, max_batch + 1)}) if self.provider == "cuda" else [2]
        for n in sizes:
            self.infer(np.zeros((n, self.meta.window_samples), dtype=np.float32))  # also checks the outputs

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

    # -- buffers ----------------------------------------------------------------------------------
    def batch_buffer(self, rows: int) -> np.ndarray:
        """A zeroed ``(rows, window_samples)`` float32 buffer for a caller's batch (page-locked on CUDA,
        so the copy to the device needs no staging)."""
        buf = np.zeros((rows, self.meta.window_samples), dtype=np.float32)
        if self.provider == "cuda":
            _pin(buf)
        return buf

    def _lane(self, rows: int) -> tuple[ort.IOBinding, list[np.ndarray]]:
        """This thread's IO binding and output buffers (at least ``rows`` rows); runs from several threads
        at once (``tag``'s lanes) each have their own."""
        lane = self._local
        if getattr(lane, "binding", None) is None:
            lane.binding, lane.outputs = self.session.io_binding(), []
        if not lane.outputs or len(lane.outputs[0]) < rows:
            lane.outputs = [np.zeros((max(rows, self._max_batch), w or 1), dtype=np.float32) for w in self._widths]
        return lane.binding, lane.outputs

    def _padded(self, n: int) -> int:
        """Rows actually run for ``n`` windows: on CUDA the next power of two (a few shapes, all warmed up)."""
        return 1 << (n - 1).bit_length() if self.provider == "cuda" else n

    # -- running ----------------------------------------------------------------------------------
    def run(self, windows: np.ndarray, n: int | None = None) -> np.ndarray:
        """Class probabilities (softmax of the logits) for a batch of windows."""
        return self.infer(windows, n)[0]

    def infer(self, windows: np.ndarray, n: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Class probabilities and each detector output (``{name: (n,) probabilities}``, see
        ``ModelMeta.detectors``) for the first ``n`` rows of ``windows`` (all rows by default), from one
        graph run. Rows beyond ``n`` may be run too (CUDA pads the batch) but are never reported."""
        n = len(windows) if n is None else n
        logits, *extra = self._run(windows, n)
        if not np.isfinite(logits).all():  # inputs are sanitised to +-1: a model that does this is broken
            raise UsageError(f"model {self.name}: produced NaN or infinite logits")
        detected = {}
        for name, out in zip(self.meta.detectors, extra):
            if not np.isfinite(out).all():
                raise UsageError(f"model {self.name}: detector output {name!r} is NaN or infinite")
            detected[name] = np.clip(out.reshape(-1), 0.0, 1.0)
        return softmax(logits), detected

    def _run(self, windows: np.ndarray, n: int) -> list[np.ndarray]:
        """The raw outputs for the first ``n`` rows (views of the engine's buffers when bound)."""
        rows = self._padded(n) if len(windows) >= self._padded(n) else n
        x = windows[:rows]
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        try:
            if not self.options.io_binding:
                outs = self.session.run(self._names, {self.meta.input_name: x})
            else:
                outs = self._bound_run(x)
        except Exception as exc:  # a graph that loads but cannot run this input
            raise UsageError(f"model {self.name}: inference failed ({_first_line(exc)})") from None
        logits = outs[0]
        if logits.shape != (rows, len(self.meta.labels)):
            raise UsageError(f"model {self.name}: graph output has shape {logits.shape}, "
                             f"expected ({rows}, {len(self.meta.labels)}) for the labels")
        for name, out in zip(self.meta.detectors, outs[1:]):
            if out.size != rows:
                raise UsageError(f"model {self.name}: detector output {name!r} has shape {out.shape}, "
                                 f"expected ({rows},)")
        return [o[:n] for o in outs]

    def _bound_run(self, x: np.ndarray) -> list[np.ndarray]:
        rows = len(x)
        b, buffers = self._lane(rows)
        b.bind_input(self.meta.input_name, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
        for name, buf, width in zip(self._names, buffers, self._widths):
            shape = [rows] if width is None else [rows, width]
            b.bind_output(name, "cpu", 0, np.float32, shape, buf.ctypes.data)
        self.session.run_with_iobinding(b)
        return [buf[:rows, 0] if width is None else buf[:rows] for buf, width in zip(buffers, self._widths)]


def _pin(buf: np.ndarray) -> bool:
    """Page-lock ``buf`` for fast host-to-device copies (cudaHostRegister in the CUDA runtime onnxruntime
    loaded); False, and ``buf`` left as it is, when that is not possible."""
    import ctypes

    for lib in ("libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0", "libcudart.so"):
        try:
            cudart = ctypes.CDLL(lib)
        except OSError:
            continue
        return cudart.cudaHostRegister(ctypes.c_void_p(buf.ctypes.data), ctypes.c_size_t(buf.nbytes), 0) == 0
    return False
