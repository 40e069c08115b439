"""Engine: real ONNX graphs load, are checked against their metadata, and give probabilities."""

import numpy as np
import pytest

from streamtag.engine import Engine, choose_providers
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
