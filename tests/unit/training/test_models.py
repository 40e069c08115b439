"""Architectures: shapes, weight naming, strict AudioSet loading and the zero-shot head."""

import numpy as np
import pytest
import torch

from streamtag.audio import load_mono
from training.models import ARCHS, build_model, mobilenet, resnet
from training.models.mobilenet import GENRE_TO_AUDIOSET, audioset_class_ids, load_audioset, shared_dir

GENRES = tuple(GENRE_TO_AUDIOSET)


@pytest.fixture(scope="module")
def real_windows() -> torch.Tensor:
    """Two 3-s windows of real music at 32 kHz."""
    x = load_mono(shared_dir() / "data/gtzan-mini/rock/rock.00003.flac", 32000)
    return torch.from_numpy(np.stack([x[32000:128000], x[400000:496000]]))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_every_arch_maps_a_batch_of_windows_to_logits(arch):
    torch.manual_seed(0)
    model = build_model(arch, GENRES).eval()
    assert model.window_seconds == 3.0 and model.labels == GENRES
    wave = torch.randn(2, model.window_samples) * 0.1
    spec = model.frontend(wave)
    assert spec.shape == (2, 1, *model.spec_shape)
    with torch.no_grad():
        logits = model(wave)
    assert logits.shape == (2, len(GENRES)) and torch.isfinite(logits).all()


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("vgg", GENRES)


def test_mobilenet_loads_the_audioset_weights_strictly_with_the_published_names_and_shapes():
    listed = {}
    for line in (shared_dir() / "weights/efficientat-mn04-audioset.keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split("\t")
            listed[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    net = load_audioset()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == listed
    assert sum(p.numel() for p in net.parameters()) == 983_599


def test_zero_shot_head_reproduces_the_audioset_genre_logits(real_windows):
    full = load_audioset()
    model = build_model("mobilenet", GENRES).eval()
    with torch.no_grad():
        want = full(model.frontend(real_windows))[:, audioset_class_ids(GENRES)]
        got = model(real_windows)
        via_embedding = model.backbone.head(model.backbone.embed(model.frontend(real_windows)))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(via_embedding, got, rtol=0, atol=1e-5)
    assert audioset_class_ids(["rock", "metal", "blues"]) == [219, 220, 251]


def test_mobilenet_head_options():
    random_head = mobilenet.build(["speech", "music"], head="random")
    assert random_head.backbone.classifier[5].out_features == 2
    with pytest.raises(ValueError, match="no AudioSet class"):
        mobilenet.build(["speech", "music"])


def test_resnet_uses_torchvision_names():
    names = resnet.ResNet(18, 1000).state_dict().keys()
    assert len(names) == 122 and len(resnet.ResNet(34, 1000).state_dict()) == 218
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in names
    assert "layer1.0.downsample.0.weight" not in names


def test_resnet_init_loads_an_imagenet_state_dict(tmp_path):
    torch.manual_seed(1)
    imagenet = resnet.ResNet(18, 1000).state_dict()
    imagenet["conv1.weight"] = torch.randn(64, 3, 7, 7)  # RGB stem as torchvision ships it
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(imagenet, path)
    model = build_model("resnet18", GENRES, init=path)
    got = model.backbone.state_dict()
    torch.testing.assert_close(got["conv1.weight"], imagenet["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(got["layer3.1.conv2.weight"], imagenet["layer3.1.conv2.weight"])
    assert got["fc.weight"].shape == (len(GENRES), 512)

    del imagenet["layer4.1.bn2.bias"]
    torch.save(imagenet, path)
    with pytest.raises(RuntimeError, match="layer4.1.bn2.bias"):
        build_model("resnet18", GENRES, init=path)
