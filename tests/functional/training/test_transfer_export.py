"""The fused transfer model exports as one graph (both backbones, head, temperature, speech) with parity."""

import dataclasses

import numpy as np
import onnxruntime as ort
import torch

from streamtag.engine import Engine
from streamtag.modelmeta import ModelMeta, resolve_model
from training.backbones import build_all
from training.data import discover
from training.export import export_onnx, reference_windows
from training.features import FeatureConfig, load_features
from training.heads import HeadConfig
from training.models.mobilenet import shared_dir
from training.splits import Split
from training.transfer import GENRES, FusedNet, TransferConfig, fit_head


def test_fused_graph_reproduces_torch_and_runs_in_the_engine(tmp_path):
    tracks = [t for t in discover([shared_dir() / "data/gtzan-mini"], GENRES)
              if t.key in ("metal/metal.00000", "jazz/jazz.00000")]
    backbones = {b.name: b for b in build_all(["audioset", "musicnn-msd"])}
    feats = load_features(list(backbones.values()), tracks, GENRES, FeatureConfig(views=0, hop_seconds=6.0),
                          tmp_path / "cache")
    head_cfg = HeadConfig(kind="residual", views="clean",
                          train=dataclasses.replace(HeadConfig().train, epochs=3, batch_size=4, lr=1e-2))
    head, _ = fit_head(backbones, tracks, feats, Split("t", (0, 1), (), ()), TransferConfig(head=head_cfg),
                       tmp_path / "run")
    model = FusedNet([backbones["audioset"], backbones["musicnn-msd"]], head, temperature=0.8).eval()
    windows = reference_windows(32000, model.window_samples, per_clip=1)
    onnx_path, json_path = export_onnx(model, tmp_path / "models", "fused", windows=windows, track_temperature=0.7,
                                       licence="test", weights=[b.weights for b in backbones.values()])
    meta = ModelMeta.load(json_path)
    assert meta.provenance["parity_max_abs_diff"] <= 1e-4 and meta.track_temperature == 0.7
    assert set(meta.detectors) == {"speech"} and meta.arch == "transfer:audioset+musicnn-msd"
    assert set(meta.provenance["weights"]) == {"efficientat-mn04-audioset.pt", "musicnn-msd.npz"}
    graph = meta.provenance["graph_frontend"]  # each backbone's own front end, both inside the graph
    assert graph["kind"] == "backbones" and list(graph["backbones"]) == ["audioset", "musicnn-msd"]
    assert graph["backbones"]["musicnn-msd"]["resampled_to"] == 16000
    outputs = [o.name for o in ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_outputs()]
    assert outputs == ["logits", "speech"]
    with torch.no_grad():
        logits, speech = model(torch.from_numpy(windows))
    engine = Engine(str(onnx_path), "cpu")
    probs = engine.run(windows)
    np.testing.assert_allclose(probs, torch.softmax(logits, dim=1).numpy(), atol=1e-5)
    zero = Engine(str(resolve_model("audioset-zeroshot")[0]), "cpu")
    _, detected = zero.infer(windows)
    np.testing.assert_allclose(engine.infer(windows)[1]["speech"], detected["speech"], atol=1e-5)
    np.testing.assert_allclose(speech.numpy(), detected["speech"], atol=1e-5)
