"""The trainer on real models and real audio: the loss falls (every trainable front end and backbone, each
then exported with ONNX Runtime parity), resume is exact, feature heads train too."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from streamtag.errors import UsageError
from streamtag.modelmeta import ModelMeta
from training.augment import AugmentConfig
from training.data import AudioCache, DataConfig, WindowDataset, discover, label_set, make_loader
from training.export import export_onnx, reference_windows
from training.models import build_model
from training.trainer import TrainConfig, Trainer

CFG = TrainConfig(epochs=2, batch_size=8, lr=3e-3, patience=0, seed=0, device="cpu")


def loaders(root, tmp_path, labels, model):
    tracks = discover([root])
    dcfg = DataConfig(sample_rate=model.frontend_params.sample_rate, hop_seconds=3.0, train_crops_per_track=4,
                      cache_dir=str(tmp_path / "cache"))
    cache = AudioCache(dcfg.cache_dir, dcfg.sample_rate)
    train = make_loader(WindowDataset(tracks[::2], labels, cache, dcfg, train=True), 8, train=True)
    valid = make_loader(WindowDataset(tracks[1::2], labels, cache, dcfg, train=False), 16, train=False)
    return train, valid


def test_two_epoch_fit_loss_falls(small_data, tmp_path):
    labels = label_set(discover([small_data]))
    model = build_model("cnn", labels, dropout=0.0)
    train, valid = loaders(small_data, tmp_path, labels, model)
    res = Trainer(model, CFG, tmp_path / "run", AugmentConfig.off()).fit(train, valid)
    losses = [h["train_loss"] for h in res.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert 0.0 <= res.best_metric <= 1.0 and res.best_epoch in (1, 2)
    for f in ("train.log", "history.json", "checkpoint.pt", "best.pt"):
        assert (tmp_path / "run" / f).is_file()
    assert "epoch 2" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("arch,options,frontend", [
    ("raw1d", {"channels": (8, 8, 16, 16, 16, 32, 32, 32, 64)}, "waveform"),
    ("wavelet", {}, "morlet-scalogram"),
    ("resnet34", {"width": 8}, "log-mel"),
])
def test_arch_trains_two_epochs_with_falling_loss_and_exports_with_parity(arch, options, frontend, small_data,
                                                                           tmp_path):
    labels = label_set(discover([small_data]))
    torch.manual_seed(0)
    model = build_model(arch, labels, dropout=0.0, **options)  # test widths; the real ones train in runs/
    train, valid = loaders(small_data, tmp_path, labels, model)
    augment = replace(AugmentConfig(), mixup_alpha=0.0)  # gain, noise and (on images) SpecAugment masks
    res = Trainer(model, CFG, tmp_path / "run", augment).fit(train, valid)
    losses = [h["train_loss"] for h in res.history]
    assert len(losses) == 2 and losses[1] < losses[0]
    windows = reference_windows(model.frontend_params.sample_rate, model.window_samples, per_clip=1)
    _, json_path = export_onnx(model, tmp_path / "models", arch, windows=windows)
    meta = ModelMeta.load(json_path)
    assert meta.provenance["parity_max_abs_diff"] <= 1e-4 and meta.provenance["parity_windows"] == len(windows)
    assert meta.provenance["graph_frontend"]["kind"] == frontend and meta.arch == arch


def test_resume_continues_exactly(small_data, tmp_path):
    labels = label_set(discover([small_data]))
    cfg = replace(CFG, epochs=3)

    def run(name, stop_after=None, resume=False):
        torch.manual_seed(0)
        model = build_model("cnn", labels, dropout=0.2)
        train, valid = loaders(small_data, tmp_path, labels, model)

        def stop(epoch, _):
            if epoch == stop_after:
                raise KeyboardInterrupt

        t = Trainer(model, cfg, tmp_path / name, AugmentConfig())
        return t.fit(train, valid, resume=resume, on_epoch=stop)

    straight = run("a")
    with pytest.raises(KeyboardInterrupt):
        run("b", stop_after=1)
    resumed = run("b", resume=True)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history],
                                                                       rel=1e-5)
    assert resumed.best_epoch == straight.best_epoch


def test_resume_without_checkpoint_is_a_usage_error(small_data, tmp_path):
    labels = label_set(discover([small_data]))
    model = build_model("cnn", labels)
    train, _ = loaders(small_data, tmp_path, labels, model)
    with pytest.raises(UsageError, match="no checkpoint"):
        Trainer(model, CFG, tmp_path / "empty").fit(train, resume=True)


def test_head_on_cached_features(tmp_path):
    # the generic path: a small module on fixed features, batches (x, y, track_index), plus a regulariser
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 16, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    tracks = torch.arange(120) // 4
    head = torch.nn.Linear(16, 3)
    penalty = []

    def l2(m):
        penalty.append(1)
        return 1e-4 * m.weight.pow(2).sum()

    cfg = replace(CFG, epochs=8, lr=5e-2)
    data = TensorDataset(x, y, tracks)
    res = Trainer(head, cfg, tmp_path / "head", AugmentConfig().waveform_off(), n_classes=3, regulariser=l2).fit(
        DataLoader(data, batch_size=16, shuffle=True), DataLoader(data, batch_size=64))
    assert penalty and res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.history[-1]["valid_acc"] > 0.8
