"""STFT lowering: the rewritten graph computes what ONNX Runtime's STFT does, on hand-built graphs and on the
shipped models with real music; an STFT it cannot lower is left as it is, and the engine still loads it."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from streamtag.engine import LOWERING_TOLERANCE, Engine
from streamtag.stft import lower_stft, split

REPO = Path(__file__).resolve().parents[3]


def _session(model) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _stft_graph(length: int, step: int | None, window: np.ndarray | None, frame_length: int | None = None,
                onesided: int = 1, step_from_node: str = "", runtime_inputs: tuple[str, ...] = (),
                reduce_to_logits: bool = False) -> onnx.ModelProto:
    """``x (batch, length)`` -> Unsqueeze -> STFT -> ``spec`` (or, with ``reduce_to_logits``, the mean of each
    frame as ``logits (batch, frames)``). ``step_from_node``: the step comes from a ``Constant`` node or through
    an ``Identity`` node rather than an initializer; ``runtime_inputs``: ``step``/``window`` are graph inputs."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", length])]
    inits = [numpy_helper.from_array(np.array([2], dtype=np.int64), "axes")]
    nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["signal"])]
    step_name = window_name = length_name = ""
    if step is not None:
        step_name = "step"
        if "step" in runtime_inputs:
            inputs.append(helper.make_tensor_value_info("step", TensorProto.INT64, []))
        elif step_from_node == "Constant":
            nodes.insert(0, helper.make_node("Constant", [], ["step"],
                                             value=numpy_helper.from_array(np.array(step, dtype=np.int64))))
        elif step_from_node == "Identity":
            inits.append(numpy_helper.from_array(np.array(step, dtype=np.int64), "step_value"))
            nodes.insert(0, helper.make_node("Identity", ["step_value"], ["step"]))
        else:
            inits.append(numpy_helper.from_array(np.array(step, dtype=np.int64), "step"))
    if window is not None:
        window_name = "window"
        if "window" in runtime_inputs:
            inputs.append(helper.make_tensor_value_info("window", TensorProto.FLOAT, [len(window)]))
        else:
            inits.append(numpy_helper.from_array(window.astype(np.float32), "window"))
    if frame_length is not None:
        length_name = "frame_length"
        inits.append(numpy_helper.from_array(np.array(frame_length, dtype=np.int64), "frame_length"))
    stft_out = "stft" if reduce_to_logits else "spec"
    nodes.append(helper.make_node("STFT", ["signal", step_name, window_name, length_name], [stft_out],
                                  name="stft", onesided=onesided))
    if reduce_to_logits:
        nodes.append(helper.make_node("ReduceMean", ["stft"], ["logits"], axes=[2, 3], keepdims=0))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", None])]
    else:
        outputs = [helper.make_tensor_value_info("spec", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "stft_test", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


@pytest.mark.parametrize("length, step, n, kind", [
    (32000, 320, 1024, "hann"),  # the shipped models' front end: 32 phases
    (16000, 160, 400, "hann"),
    (4000, 7, 256, "hann"),  # no common factor: N2 = 1, a plain DFT as one Conv
    (8192, 256, 512, "frame_length"),  # no window: a rectangular one of frame_length samples
    (8000, 128, 512, "Constant"),  # the step from a Constant node, as some exporters write it
])
def test_lowered_stft_equals_onnxruntime_stft(length, step, n, kind):
    window = None if kind == "frame_length" else _hann(n)
    model = _stft_graph(length, step, window, frame_length=n if kind == "frame_length" else None,
                        step_from_node="Constant" if kind == "Constant" else "")
    x = np.random.default_rng(1).uniform(-1, 1, (3, length)).astype(np.float32)
    want = _session(model).run(None, {"x": x})[0]
    assert lower_stft(model) == 1
    assert not any(node.op_type == "STFT" for node in model.graph.node)
    got = _session(model).run(None, {"x": x})[0]
    assert got.shape == want.shape == (3, (length - n) // step + 1, n // 2 + 1, 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("case", ["step at run time", "window at run time", "two-sided", "step through a node"])
def test_an_stft_it_cannot_lower_is_left_alone(case):
    kw = {"step at run time": dict(runtime_inputs=("step",)), "window at run time": dict(runtime_inputs=("window",)),
          "two-sided": dict(onesided=0), "step through a node": dict(step_from_node="Identity")}[case]
    model = _stft_graph(8000, 128, _hann(512), **kw)
    before = model.SerializeToString()
    assert lower_stft(model) == 0
    assert model.SerializeToString() == before


def test_split_divides_the_frame_and_the_step():
    assert split(1024, 320) == (32, 32)  # least work: N1 + N2 smallest
    assert split(256, 7) == (256, 1)
    for n, step in [(400, 160), (800, 320), (2048, 512), (512, 100)]:
        n1, n2 = split(n, step)
        assert n1 * n2 == n and step % n2 == 0


def test_engine_loads_a_model_whose_stft_it_cannot_lower_as_shipped(tmp_path):
    model = _stft_graph(16000, 1600, _hann(1600), step_from_node="Identity", reduce_to_logits=True)
    model.graph.input[0].name = "waveform"
    model.graph.node[1].input[0] = "waveform"  # after the Identity: Unsqueeze reads the waveform
    onnx.save(model, tmp_path / "stuck.onnx")
    labels = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
    (tmp_path / "stuck.json").write_text(json.dumps({
        "name": "stuck", "arch": "cnn", "labels": labels, "window_seconds": 1.0, "frontend": {"sample_rate": 16000},
        "metrics": {"cv_track_acc": 0.5}}))
    e = Engine(str(tmp_path / "stuck.onnx"), "cpu")
    assert e.lowered == 0
    x = np.random.default_rng(2).uniform(-1, 1, (2, 16000)).astype(np.float32)
    logits = _session(str(tmp_path / "stuck.onnx")).run(None, {"waveform": x})[0]
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e.run(x), z / z.sum(axis=1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize("name", ["fast", "fusion"])
def test_shipped_models_lowered_give_the_same_outputs_on_real_music(name, music):
    path = REPO / "models" / f"{name}.onnx"
    model = onnx.load(path)
    assert lower_stft(model) >= 1
    assert not any(node.op_type == "STFT" for node in model.graph.node)
    rate, size = 32000, 96000
    windows = np.stack([music(rate, g)[a:a + size] for g, a in [("rock", 0), ("jazz", 5 * rate),
                                                                 ("classical", 11 * rate), ("metal", 20 * rate)]])
    feed = {"waveform": windows.astype(np.float32)}
    want = _session(str(path)).run(None, feed)
    got = _session(model).run(None, feed)
    assert len(got) == len(want) >= 1
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert np.abs(g - w).max() <= LOWERING_TOLERANCE * max(1.0, float(np.abs(w).max()))
    assert (got[0].argmax(axis=1) == want[0].argmax(axis=1)).all()
