"""``python -m training`` end to end on short real crops: train, cv, evaluate, export, compare, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf

from streamtag.audio import resample
from training.cli import main

REPO = Path(__file__).resolve().parents[3]


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "training", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(small_data, small_config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cnn-train"
    cache = out.parent / "cache"
    r = cli("train", "--config", small_config, "--data", small_data, "--out", out, "--cache", cache)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["arch"] == "cnn" and summary["epochs_run"] == 2
    return out


@pytest.mark.slow
def test_train_writes_a_complete_run_folder(trained):
    for f in ("config.json", "train.log", "history.json", "checkpoint.pt", "best.pt", "summary.json", "report.json",
              "confusion.png", "history.png"):
        assert (trained / f).is_file(), f
    report = json.loads((trained / "report.json").read_text())
    cfg = json.loads((trained / "config.json").read_text())
    n_test = cfg["n_test"]
    assert report["track_soft"]["n"] == n_test and report["window"]["n"] == 2 * n_test  # 6-s crops, 3-s hop
    assert set(report["per_source"]) == {"mini3"}
    assert len(report["track_soft"]["confusion"]) == 3
    # the test tracks are neither training nor validation tracks
    assert cfg["n_train"] + cfg["n_valid"] + cfg["n_test"] == 12
    # the best model's validation windows are kept too (ensembles are chosen on them), scored as in training
    valid = json.loads((trained / "valid" / "report.json").read_text())
    summary = json.loads((trained / "summary.json").read_text())
    assert valid["track_soft"]["n"] == cfg["n_valid"] and valid["track_soft"]["acc"] == summary["valid_track_acc"]
    assert (trained / "predictions.npz").is_file() and (trained / "valid" / "predictions.npz").is_file()


@pytest.mark.slow
def test_cv_aggregates_folds_and_resumes(small_data, small_config, tmp_path):
    out = tmp_path / "cv"
    args = ("cv", "--config", small_config, "--data", small_data, "--out", out, "--cache", tmp_path / "cache",
            "--max-folds", 2, "--epochs", 1)
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["folds"]) == 2 and cv["folds_total"] == 3
    assert (out / "history.png").is_file() and (out / "fold0" / "valid" / "predictions.npz").is_file()
    assert cv["test_track_soft_acc"]["n"] == 2
    n_test = [json.loads((out / f"fold{i}" / "config.json").read_text())["n_test"] for i in range(2)]
    assert sum(map(sum, cv["confusion"])) == sum(n_test)  # pooled track-level confusion over the folds run
    stamp = (out / "fold0" / "best.pt").stat().st_mtime_ns
    r = cli(*args, "--resume")
    assert r.returncode == 0, r.stderr
    assert (out / "fold0" / "best.pt").stat().st_mtime_ns == stamp  # finished folds are not retrained
    assert "already done" in r.stderr


@pytest.mark.slow
def test_evaluate_export_and_compare(trained, small_data, mini_dir, tmp_path):
    r = cli("evaluate", "--run", trained, "--data", small_data, "--out", tmp_path / "ev",
            "--cache", trained.parent / "cache")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["track_soft"]["n"] == 12  # every track of the data

    # the run's own test fold, re-scored from best.pt, reproduces its report exactly
    r = cli("evaluate", "--run", trained, "--split", "group", "--fold", 0, "--out", tmp_path / "ev0",
            "--cache", trained.parent / "cache")
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "ev0" / "fold0" / "report.json").read_text())
    original = json.loads((trained / "report.json").read_text())
    assert again["track_soft"] == original["track_soft"] and again["tracks"] == original["tracks"]

    models = tmp_path / "models"
    r = cli("export", "--run", trained, "--name", "cnn-test", "--out", models)
    assert r.returncode == 0, r.stderr
    onnx_path = models / "cnn-test.onnx"
    meta = json.loads((models / "cnn-test.json").read_text())
    assert meta["labels"] == ["blues", "classical", "metal"] and meta["training"]["epochs_run"] == 2
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x, sr = sf.read(str(mini_dir / "metal" / "metal.00005.flac"), dtype="float32")
    w = resample(x, sr, 16000)[:48000][None]
    assert sess.run(None, {"waveform": w})[0].shape == (1, 3)

    r = cli("compare", trained, "--models", models, "--per-class", "--out", tmp_path / "cmp.md")
    assert r.returncode == 0, r.stderr
    table = (tmp_path / "cmp.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| cnn-train"))
    assert "| cnn |" in row and " M |" in row
    assert f"{onnx_path.stat().st_size / 2**20:.1f}" in row  # ONNX size found through export.json
    cm = json.loads((trained / "report.json").read_text())["track_soft"]["confusion"]
    per_class = table.splitlines()[-1]
    cells = [c.strip() for c in per_class.strip("|").split("|")][1:]
    assert per_class.startswith("| cnn-train |") and len(cells) == 3 + 2
    for i, (row, cell) in enumerate(zip(cm, cells)):  # correct/total per genre, from the run's confusion matrix
        assert cell == "–" if not sum(row) else cell.endswith(f"({row[i]}/{sum(row)})")
    correct, total = int(np.trace(cm)), int(np.sum(cm))  # then pooled over all tracks, and the mean over genres
    assert cells[3] == f"{100 * correct / total:.1f} ({correct}/{total})"
    assert cells[4] == f"{100 * np.mean([row[i] / sum(row) for i, row in enumerate(cm) if sum(row)]):.1f}"


def _error_line(r: subprocess.CompletedProcess) -> str:
    """The one error line (progress lines may precede it); no traceback."""
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and lines[-1].startswith("training: error: "), r.stderr
    assert sum(line.startswith("training: error") for line in lines) == 1
    return lines[-1]


@pytest.fixture
def run_main(capsys):
    """The CLI in-process (same code path as ``python -m training``, minus interpreter start-up)."""

    def run(*args) -> subprocess.CompletedProcess:
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return run


def test_bad_data_folders_exit_2_with_one_line(small_data, small_config, tmp_path, run_main):
    base = ("train", "--config", small_config, "--out", tmp_path / "run", "--cache", tmp_path / "cache")
    assert "not found" in _error_line(cli(*base, "--data", tmp_path / "missing"))  # the real process, once
    (tmp_path / "empty").mkdir()
    assert "no audio files" in _error_line(run_main(*base, "--data", tmp_path / "empty"))
    one = tmp_path / "one" / "blues"
    one.mkdir(parents=True)
    (one / "a.wav").symlink_to(small_data / "blues" / "blues.00000.wav")
    assert "only one genre" in _error_line(run_main(*base, "--data", tmp_path / "one"))
    bad = tmp_path / "bad"
    for g in ("blues", "metal"):
        (bad / g).mkdir(parents=True)
        for i in range(3):
            (bad / g / f"{i}.wav").symlink_to(small_data / g / f"{g}.0000{i}.wav")
    (bad / "metal" / "broken.flac").write_bytes(b"fLaC but not really")
    line = _error_line(run_main(*base, "--data", bad, "--split", "stratified"))
    assert "broken.flac" in line and "cannot decode" in line


@pytest.mark.parametrize("extra,msg", [
    (("--split", "nope"), "unknown --split"),
    (("--folds", "2"), "at least 3"),
    (("--epochs", "0"), "must be positive"),
    (("--init", "/no/such/weights.pt"), "weights file not found"),
    (("--resume",), "no checkpoint"),
    (("--split", "filtered", "--split-dir", "/no/such/dir"), "split list not found"),
])
def test_bad_options_exit_2(small_data, small_config, tmp_path, extra, msg, run_main):
    r = run_main("train", "--config", small_config, "--data", small_data, "--out", tmp_path / "run",
            "--cache", tmp_path / "cache", *extra)
    assert msg in _error_line(r)


def test_bad_config_and_run_folder_exit_2(small_data, tmp_path, run_main):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('arch = "cnn"\n[train]\nepochz = 3\n')
    assert "unknown keys epochz" in _error_line(run_main("train", "--config", cfg, "--data", small_data))
    assert "no config.json" in _error_line(run_main("export", "--run", tmp_path))
    assert "no cv.json or summary.json" in _error_line(run_main("compare", tmp_path))
    assert "unknown architecture" in _error_line(run_main("train", "--arch", "vgg99", "--data", small_data))
    assert "cannot make 5 folds" in _error_line(run_main("train", "--arch", "cnn", "--data", small_data, "--folds", 5,
                                                         "--split", "stratified", "--out", tmp_path / "r"))


@pytest.mark.slow
def test_tune_scores_validation_folds_only(small_data, small_config, tmp_path, run_main):
    out = tmp_path / "tune"
    r = run_main("tune", "--config", small_config, "--data", small_data, "--out", out, "--cache", tmp_path / "cache",
                 "--trials", 2, "--epochs", 1)
    assert r.returncode == 0, r.stderr
    best = json.loads((out / "best.json").read_text())
    assert best["complete"] + best["pruned"] == 2 and 0.0 <= best["valid_track_acc"] <= 1.0
    assert set(best["params"]) >= {"lr", "weight_decay", "mixup_alpha", "dropout"}
    assert (out / "optuna.db").is_file()
    trial_runs = list(out.glob("trial*/*"))
    assert trial_runs and not any((d / "report.json").exists() for d in trial_runs)  # test folds never scored
    # a second call continues the same study
    assert run_main("tune", "--config", small_config, "--data", small_data, "--out", out, "--cache",
                    tmp_path / "cache", "--trials", 1, "--epochs", 1).returncode == 0
    assert json.loads((out / "best.json").read_text())["complete"] + json.loads(
        (out / "best.json").read_text())["pruned"] == 3


@pytest.mark.slow
def test_evaluate_pretrained_arch_on_the_cv_folds(small_data, tmp_path, run_main):
    out = tmp_path / "zs"
    r = run_main("evaluate", "--arch", "audioset-zeroshot", "--data", small_data, "--split", "group", "--folds", 3,
                 "--out", out, "--cache", tmp_path / "cache")
    assert r.returncode == 0, r.stderr
    cv = json.loads((out / "cv.json").read_text())
    assert cv["trained"] is False and len(cv["folds"]) == 3 and cv["arch"] == "audioset-zeroshot"
    assert sum(map(sum, cv["confusion"])) == 12  # every track scored once, as a test track
    assert cv["test_track_soft_acc"]["mean"] > 0.5  # the AudioSet genre outputs know blues/classical/metal
    assert cv["valid_track_acc"]["n"] == 3  # scored on each split's validation fold as well
