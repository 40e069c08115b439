"""``python -m training ensemble`` on real runs (cnn + raw1d on short real crops), and the late-fusion export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.cli import _load_run_model, main
from training.evaluate import load_predictions, softmax
from training.export import reference_windows


@pytest.fixture(scope="module")
def runs(small_data, small_config, tmp_path_factory) -> Path:
    """Two real one-fold CV runs on the same folds: the test cnn config and a narrow raw1d."""
    root = tmp_path_factory.mktemp("ens")
    raw = root / "raw1d.toml"
    raw.write_text(small_config.read_text().replace('arch = "cnn"', 'arch = "raw1d"')
                   .replace("[model]\n", "[model]\nchannels = [8, 8, 16, 16, 16, 32, 32, 32, 64]\n"))
    for name, cfg in (("cnn", small_config), ("raw1d", raw)):
        code = main(["cv", "--config", str(cfg), "--data", str(small_data), "--max-folds", "1", "--epochs", "1",
                     "--out", str(root / name), "--cache", str(root / "cache")])
        assert code == 0
    return root


def _track_predictions(report: dict) -> dict[str, tuple[str, str]]:
    return {t["key"]: (t["soft"], t["hard"]) for t in report["tracks"]}


@pytest.mark.slow
@pytest.mark.parametrize("vote", ["soft", "hard"])
def test_ensemble_combines_the_members_window_probabilities_per_track(runs, vote, capsys):
    out = runs / f"ens-{vote}"
    assert main(["ensemble", str(runs / "cnn"), str(runs / "raw1d"), "--vote", vote, "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    cv = json.loads((out / "cv.json").read_text())
    assert cv["arch"] == "ensemble" and cv["vote"] == vote and len(cv["folds"]) == 1 and cv["split"] == "group"
    assert [Path(m["run"]).name for m in cv["members"]] == ["cnn", "raw1d"]
    assert printed["test_track_soft_acc"] == cv["test_track_soft_acc"]["mean"]
    assert printed["best_member"] in {m["run"] for m in cv["members"]}
    best = next(m for m in cv["members"] if m["run"] == cv["best_member"])
    assert best["valid_track_acc"] == max(m["valid_track_acc"] for m in cv["members"])
    assert cv["gain_over_best_member"] == pytest.approx(cv["test_track_soft_acc"]["mean"] - best["test_track_soft_acc"])

    # recompute the test fold by hand from the members' saved window logits
    members = [load_predictions(runs / m / "fold0" / "predictions.npz") for m in ("cnn", "raw1d")]
    probs = np.stack([softmax(m.preds.logits) for m in members])
    window = probs.mean(0) if vote == "soft" else np.eye(probs.shape[2])[probs.argmax(2)].mean(0) + 1e-3 * probs.mean(0)
    idx, labels = members[0].preds.track_index, members[0].labels
    report = json.loads((out / "fold0" / "report.json").read_text())
    for t, (soft, hard) in _track_predictions(report).items():
        rows = [i for i, tr in enumerate(members[0].tracks) if tr.key == t]
        w = window[np.isin(idx, rows)]
        assert soft == labels[int(w.mean(0).argmax())]
        counts = np.bincount(w.argmax(1), minlength=len(labels)) + 1e-3 * w.mean(0) / w.mean(0).sum()
        assert hard == labels[int(counts.argmax())]
    assert report["window"]["n"] == len(idx) and (out / "fold0" / "valid" / "report.json").is_file()


@pytest.mark.slow
def test_late_fusion_exports_as_one_graph_with_both_front_ends(runs, capsys):
    assert main(["ensemble", str(runs / "cnn"), str(runs / "raw1d"), "--out", str(runs / "fused")]) == 0
    models = runs / "models"
    assert main(["export", "--run", str(runs / "cnn" / "fold0"), "--run", str(runs / "raw1d" / "fold0"),
                 "--cv", str(runs / "fused"), "--out", str(models)]) == 0
    meta = json.loads((models / "cnn+raw1d.json").read_text())
    assert meta["arch"] == "cnn+raw1d" and meta["provenance"]["parity_max_abs_diff"] <= 1e-4
    assert [f["kind"] for f in meta["provenance"]["graph_frontend"]["members"]] == ["log-mel", "waveform"]
    assert meta["metrics"]["test_track_soft_acc"] == json.loads((runs / "fused" / "cv.json").read_text())[
        "test_track_soft_acc"]
    # softmax of the fused graph's output is the mean of the two trained members' probabilities
    windows = reference_windows(16000, 48000, per_clip=1)
    fused = ort.InferenceSession(str(models / "cnn+raw1d.onnx")).run(None, {"waveform": windows})[0]
    with torch.no_grad():
        members = [_load_run_model(runs / n / "fold0")[2].eval()(torch.from_numpy(windows)) for n in ("cnn", "raw1d")]
    np.testing.assert_allclose(softmax(fused), np.mean([softmax(m.numpy()) for m in members], axis=0), atol=1e-5)
    capsys.readouterr()
    assert main(["compare", str(runs / "cnn"), str(runs / "fused"), "--models", str(models)]) == 0
    assert "| fused | ensemble | 1 |" in capsys.readouterr().out


def test_ensemble_refuses_mismatched_or_missing_runs(runs, small_data, small_config, tmp_path, capsys):
    def error(*args) -> str:
        code = main([str(a) for a in args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[-1].startswith("training: error: ")
        return err[-1]

    assert "at least two runs" in error("ensemble", runs / "cnn", "--out", tmp_path / "e")
    assert "no cv.json or summary.json" in error("ensemble", runs / "cnn", tmp_path, "--out", tmp_path / "e")
    other = tmp_path / "stratified"
    assert main(["evaluate", "--run", str(runs / "cnn" / "fold0"), "--data", str(small_data), "--split", "stratified",
                 "--folds", "3", "--max-folds", "1", "--out", str(other), "--cache", str(runs / "cache")]) == 0
    capsys.readouterr()
    assert "differ from cnn's group0" in error("ensemble", runs / "cnn", other, "--out", tmp_path / "e")
    (runs / "raw1d" / "fold0" / "predictions.npz").rename(tmp_path / "kept.npz")
    try:
        assert "no predictions.npz" in error("ensemble", runs / "cnn", runs / "raw1d", "--out", tmp_path / "e")
    finally:
        (tmp_path / "kept.npz").rename(runs / "raw1d" / "fold0" / "predictions.npz")
