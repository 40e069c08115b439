"""Engine: real ONNX graphs load, are checked against their metadata, and give probabilities; the shipped
model runs lowered, through an IO binding per thread, with results of their own."""

import sys
import threading

import numpy as np
import pytest

from streamtag.engine import Engine, EngineOptions, choose_providers
from streamtag.errors import UsageError


def test_tiny_model_runs_batches_on_cpu(tiny_env):
    e = Engine("tiny", "cpu")
    assert e.provider == "cpu" and e.meta.window_samples == 16000
    probs = e.run(np.random.default_rng(0).standard_normal((5, 16000)).astype(np.float32))
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_model_given_as_a_path(tiny_models):
    assert Engine(str(tiny_models / "tiny.onnx"), "auto").name == "tiny"


@pytest.mark.parametrize("name, needle", [
    ("broken", "model broken: cannot load broken.onnx"),
    ("wronglabels", "model wronglabels: graph output"),
    ("wrongwindow", "model wrongwindow: graph takes 16000 samples"),
    ("nosuch", "unknown model 'nosuch'"),
])
def test_bad_models_are_usage_errors(tiny_env, name, needle):
    with pytest.raises(UsageError) as e:
        Engine(name, "cpu")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cuda_request_without_cuda_is_a_usage_error():
    import onnxruntime as ort
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(UsageError, match="--provider cuda: not available"):
        choose_providers("cuda")
    assert choose_providers("auto") == ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def fast():
    """The shipped fast model on the CPU (room for 4 windows per run before its buffers grow)."""
    return Engine("fast", "cpu", max_batch=4)


@pytest.fixture(scope="module")
def windows(music):
    """Eight 3-s windows of real music at 32 kHz, from four genres."""
    rate, size = 32000, 96000
    return np.stack([music(rate, g)[a * rate:a * rate + size] for g in ("rock", "jazz", "classical", "metal")
                     for a in (2, 17)])


def test_shipped_models_run_their_stft_lowered_by_default(fast):
    assert fast.lowered >= 1
    assert Engine("fast", "cpu", options=EngineOptions(lower_stft=False)).lowered == 0


def test_io_binding_and_plain_runs_give_the_same_outputs(fast, windows):
    plain = Engine("fast", "cpu", options=EngineOptions(io_binding=False))
    p1, d1 = fast.infer(windows)
    p2, d2 = plain.infer(windows)
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    assert d1.keys() == d2.keys() == {"speech"}
    np.testing.assert_allclose(d1["speech"], d2["speech"], atol=1e-5)
    assert len(set(p1.argmax(axis=1).tolist())) > 1  # real music: not one answer for everything


def test_infer_first_n_rows_equals_running_just_those(fast, windows):
    probs, detected = fast.infer(windows, 3)
    alone, alone_detected = fast.infer(windows[:3].copy())
    assert probs.shape == (3, 10) and detected["speech"].shape == (3,)
    np.testing.assert_allclose(probs, alone, atol=1e-5)
    np.testing.assert_allclose(detected["speech"], alone_detected["speech"], atol=1e-5)


def test_more_rows_than_max_batch_and_any_layout_still_run(fast, windows):
    big = fast.run(windows)  # 8 rows on buffers sized for 4: they grow
    assert big.shape == (8, 10)
    np.testing.assert_allclose(fast.run(windows[::2].astype(np.float64)), big[::2], atol=1e-5)


def test_results_are_not_overwritten_by_the_next_call(fast, windows):
    probs, detected = fast.infer(windows[:2])
    kept, kept_speech = probs.copy(), detected["speech"].copy()
    other, _ = fast.infer(windows[4:6])
    assert not np.allclose(other, kept)
    assert np.array_equal(probs, kept) and np.array_equal(detected["speech"], kept_speech)


def test_threads_running_one_engine_at_once_each_get_their_own_results(fast, windows):
    batches = [windows[:1], windows[3:5]]  # different sizes: each thread's binding has its own buffers
    want = [fast.run(b) for b in batches]
    start = threading.Barrier(2)
    got: list[list[np.ndarray]] = [[], []]

    def lane(i: int) -> None:
        start.wait()
        for _ in range(20):
            got[i].append(fast.run(batches[i]))

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between any two steps of a run, not every 5 ms
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    for i in range(2):
        assert len(got[i]) == 20
        for probs in got[i]:
            np.testing.assert_allclose(probs, want[i], atol=1e-5)
