"""ONNX export: self-contained file, metadata, ORT-vs-torch parity, refusal of a wrong or unexportable graph."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from streamtag.modelmeta import ModelMeta, resolve_model
from training.export import ExportParityError, NotExportableError, check_parity, export_onnx, reference_windows
from training.models import build_model
from training.models.mobilenet import GENRE_TO_AUDIOSET, DetectorNet

GENRES = tuple(GENRE_TO_AUDIOSET)


@pytest.fixture(scope="module")
def cnn_model():
    torch.manual_seed(0)
    return build_model("cnn", GENRES).eval()


@pytest.fixture(scope="module")
def cnn_windows(cnn_model):
    return reference_windows(cnn_model.frontend_params.sample_rate, cnn_model.window_samples, per_clip=1)


def test_export_writes_one_verified_onnx_file_and_its_metadata(cnn_model, cnn_windows, tmp_path):
    onnx_path, json_path = export_onnx(cnn_model, tmp_path, "tiny", metrics={"cv_track_acc": 0.5},
                                       training={"epochs": 0}, windows=cnn_windows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.onnx"]
    meta = ModelMeta.load(json_path)
    assert meta.labels == GENRES and meta.arch == "cnn" and meta.frontend == cnn_model.frontend_params
    assert meta.window_samples == cnn_model.window_samples == 48000
    assert meta.metrics["cv_track_acc"] == 0.5 and meta.metrics["cpu_ms_per_window"]["batch8"] > 0
    assert meta.provenance["parity_max_abs_diff"] <= 1e-4 and meta.provenance["torch"] == torch.__version__

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["waveform"] and [o.name for o in sess.get_outputs()] == ["logits"]
    with torch.no_grad():
        want = cnn_model(torch.from_numpy(cnn_windows)).numpy()
    for batch in (1, 3):
        got = sess.run(None, {"waveform": cnn_windows[:batch]})[0]
        np.testing.assert_allclose(got, want[:batch], atol=1e-4)


class ExportsDifferently(torch.nn.Module):
    """A backbone whose exported graph adds an offset that eager torch does not: a broken export."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, spec):
        out = self.inner(spec)
        return out + 0.01 if torch.compiler.is_exporting() else out


def test_export_refuses_and_deletes_a_graph_that_disagrees_with_torch(cnn_windows, tmp_path):
    model = build_model("cnn", GENRES).eval()
    model.backbone = ExportsDifferently(model.backbone)
    with pytest.raises(ExportParityError, match="differs from torch"):
        export_onnx(model, tmp_path, "broken", windows=cnn_windows)
    assert list(tmp_path.iterdir()) == []


class ComplexSpectrum(torch.nn.Module):
    """A front end through complex tensors (framed FFT magnitude), which the ONNX exporter cannot convert."""

    def forward(self, wave):
        spec = torch.fft.rfft(wave.reshape(wave.shape[0], 250, -1))  # (B, 250 frames, 97 bins), complex
        return torch.log1p(spec[:, None].abs()).transpose(2, 3)


def test_export_names_the_operation_it_cannot_convert(cnn_windows, tmp_path):
    model = build_model("cnn", GENRES).eval()
    model.frontend = ComplexSpectrum()
    assert model(torch.from_numpy(cnn_windows[:2])).shape == (2, len(GENRES))  # torch runs it
    with pytest.raises(NotExportableError, match=r"not exportable to ONNX: no ONNX conversion for operator "
                                                 r"aten\.unsqueeze \(No decompositions registered for the complex"):
        export_onnx(model, tmp_path, "complex", windows=cnn_windows)
    assert list(tmp_path.iterdir()) == []


def test_parity_check_catches_weights_changed_after_export(cnn_windows, tmp_path):
    model = build_model("cnn", GENRES).eval()
    onnx_path, _ = export_onnx(model, tmp_path, "drift", windows=cnn_windows)
    assert check_parity(model, onnx_path, cnn_windows) <= 1e-4
    with torch.no_grad():
        model.backbone.fc.bias += 1e-3
    with pytest.raises(ExportParityError):
        check_parity(model, onnx_path, cnn_windows)


def test_shipped_zero_shot_model_matches_the_torch_network():
    onnx_path, meta = resolve_model("audioset-zeroshot")
    model = DetectorNet(build_model("audioset-zeroshot", meta.labels)).eval()
    assert meta.frontend == model.frontend_params and "MIT License" in meta.licence
    assert meta.metrics["zero_shot"]["gtzan-mini"]["whole_clip"]["correct"] == 77
    assert set(meta.detectors) == {"speech"} and "'Speech' (index 0)" in meta.detectors["speech"]
    windows = reference_windows(meta.sample_rate, meta.window_samples, per_clip=1)
    assert check_parity(model, onnx_path, windows) <= 1e-4          # genre logits and the speech output
    assert json.loads(onnx_path.with_suffix(".json").read_text())["provenance"]["weights"]


@pytest.mark.parametrize("name, backbones", [("fusion", ["audioset", "musicnn-msd"]), ("fast", ["audioset"])])
def test_shipped_transfer_models_carry_their_selection_calibration_and_licences(name, backbones):
    onnx_path, meta = resolve_model(name)
    _, zero_meta = resolve_model("audioset-zeroshot")
    assert meta.arch == "transfer:" + "+".join(backbones) and meta.labels == GENRES
    assert meta.frontend == zero_meta.frontend and meta.training["config"]["head"]["backbones"] == backbones
    assert "Florian Schmid" in meta.licence and (("Jordi Pons" in meta.licence) == ("musicnn-msd" in backbones))
    assert meta.training["data"] == {"emotify-dev": 150, "extra-4q": 122, "gtzan-mini": 100}
    assert 0.05 <= meta.training["temperature"] <= 20 and meta.track_temperature != 1.0
    cv = meta.metrics["cv_mean"]  # pooled test folds of the chosen config, with both zero-shot rows
    assert {"trained", "zero_shot:audioset", "zero_shot:musicnn-msd"} == set(cv)
    assert cv["trained"]["all"]["track_macro_acc"] > cv["zero_shot:audioset"]["all"]["track_macro_acc"]
    selection = meta.metrics["selection"]  # chosen on validation folds, with a nested test estimate
    assert "test folds are never consulted" in selection["rule"] and "zero-shot audioset" in selection["candidates"]
    assert selection["chosen"] in selection["candidates"] and {"all", "emotify-dev"} <= set(selection["nested_test"])
    windows = reference_windows(meta.sample_rate, meta.window_samples, per_clip=1)
    sessions = {n: ort.InferenceSession(str(onnx_path.with_name(f"{n}.onnx")), providers=["CPUExecutionProvider"])
                for n in (name, "audioset-zeroshot")}
    (trained, speech), (zero, zero_speech) = (s.run(None, {"waveform": windows}) for s in sessions.values())
    assert trained.shape == zero.shape == (len(windows), len(GENRES)) and np.isfinite(trained).all()
    assert np.abs(trained - zero).max() > 0.1  # the head was trained, not copied
    np.testing.assert_allclose(speech, zero_speech, atol=1e-5)  # the same untrained AudioSet speech detector


def test_models_from_the_efficientat_weights_carry_its_licence_and_weights_hash(tmp_path):
    model = build_model("mobilenet", ("metal", "jazz")).eval()
    windows = reference_windows(model.frontend_params.sample_rate, model.window_samples, per_clip=1)[:2]
    _, json_path = export_onnx(model, tmp_path, "mn", windows=windows)
    meta = ModelMeta.load(json_path)
    assert meta.licence.startswith("MIT License") and "Florian Schmid" in meta.licence
    assert meta.provenance["weights"]["efficientat-mn04-audioset.pt"].startswith("899a8c62")
