"""``mobilenet``: EfficientAT's AudioSet MobileNetV3 "mn04_as", re-implemented for its weights.

Facts taken from the public EfficientAT project (F. Schmid, MIT): torchvision's MobileNetV3-Large
block table at width 0.4, BatchNorm(eps=1e-3), Hardswish stem and last conv, channel-wise
squeeze-excitation with Linear ``fc1``/``fc2``, ReLU and a *sigmoid* gate held in
``conc_se_layers``, and the "mlp" head ``AvgPool-Flatten-Linear-Hardswish-Dropout-Linear``.
``MobileNetV3().load_state_dict(torch.load(WEIGHTS), strict=True)`` loads the shipped file.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from .genrenet import GenreNet

FRONTEND = FrontEnd()
"""The AudioSet network's own front end (fixed by its training; FrontEnd's defaults)."""

GENRE_TO_AUDIOSET = {
    "blues": "Blues", "classical": "Classical music", "country": "Country", "disco": "Disco",
    "hiphop": "Hip hop music", "jazz": "Jazz", "metal": "Heavy metal", "pop": "Pop music",
    "reggae": "Reggae", "rock": "Rock music",
}
"""GTZAN genre -> AudioSet class name whose classifier row starts (or is) that genre's output."""
GTZAN_GENRES = tuple(GENRE_TO_AUDIOSET)
"""The ten GTZAN genres in label order (alphabetical, as the data's folders sort)."""

DETECTORS = {"speech": "Speech"}
"""Extra graph outputs of :class:`DetectorNet`: output name -> the AudioSet class whose sigmoid it is."""

DERIVED_ARCHS = ("mobilenet", "audioset-zeroshot")
"""Architectures built from the EfficientAT weights: their exports carry its licence and weights hash."""

WIDTH = 0.4
"""mn04: width multiplier."""

# (input, kernel, expanded, output, squeeze-excite, hardswish, stride) at width 1.0.
BLOCKS = (
    (16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2), (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2), (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1), (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1), (160, 5, 960, 160, True, True, 1),
)
LAST_CHANNEL = 1280
"""Hidden width of the MLP head at width 1.0."""
AUDIOSET_CLASSES = 527


def shared_dir() -> Path:
    """The shared data folder: ``$STREAMTAG_SHARED`` or ``../shared`` beside the checkout."""
    return Path(os.environ.get("STREAMTAG_SHARED", Path(__file__).resolve().parents[3] / "shared"))


def weights_path() -> Path:
    """The AudioSet-trained mn04 ``state_dict``."""
    return shared_dir() / "weights" / "efficientat-mn04-audioset.pt"


def licence_text() -> str:
    """EfficientAT's MIT notice, which every model derived from its weights carries."""
    return (shared_dir() / "weights" / "LICENSE-EfficientAT.txt").read_text()


def audioset_index(display_names: Sequence[str]) -> list[int]:
    """AudioSet output index of each class display name (``"Speech"``, ``"Music"``, ``"Jazz"``, ...)."""
    with open(shared_dir() / "weights" / "audioset_class_labels_indices.csv", newline="") as f:
        by_name = {row["display_name"]: int(row["index"]) for row in csv.DictReader(f)}
    return [by_name[name] for name in display_names]


def audioset_class_ids(labels: Sequence[str]) -> list[int]:
    """AudioSet output index for each GTZAN genre in ``labels`` (via :data:`GENRE_TO_AUDIOSET`)."""
    missing = [lab for lab in labels if lab not in GENRE_TO_AUDIOSET]
    if missing:
        raise ValueError(f"no AudioSet class for label(s): {', '.join(missing)}")
    return audioset_index([GENRE_TO_AUDIOSET[lab] for lab in labels])


def _divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to a multiple of 8, never more than 10 % down (MobileNet's channel rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
             act: type[nn.Module] | None = None) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, eps=0.001, momentum=0.01)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ChannelSE(nn.Module):
    """Squeeze-excitation over channels: mean over (freq, time), fc1-ReLU-fc2-sigmoid gate."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class ConcurrentSE(nn.Module):
    """EfficientAT's wrapper (element-wise max over concurrent SE layers); mn04 holds one."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, _divisible(channels // 4))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([se(x) for se in self.conc_se_layers]).amax(dim=0)


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk -> (SE) -> project 1x1, residual when shapes allow."""

    def __init__(self, c_in: int, kernel: int, c_exp: int, c_out: int, se: bool, hardswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers = [] if c_exp == c_in else [_conv_bn(c_in, c_exp, 1, act=act)]
        layers.append(_conv_bn(c_exp, c_exp, kernel, stride, groups=c_exp, act=act))
        if se:
            layers.append(ConcurrentSE(c_exp))
        layers.append(_conv_bn(c_exp, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class MobileNetV3(nn.Module):
    """``(B, 1, 128, F)`` log-mel -> logits; ``features`` + ``classifier`` named as EfficientAT's."""

    def __init__(self, n_classes: int = AUDIOSET_CLASSES, width: float = WIDTH, dropout: float = 0.2):
        super().__init__()
        ch = [(_divisible(i * width), k, _divisible(e * width), _divisible(o * width), se, hs, s)
              for i, k, e, o, se, hs, s in BLOCKS]
        last_in = ch[-1][3]
        layers = [_conv_bn(1, ch[0][0], 3, 2, act=nn.Hardswish)]
        layers += [InvertedResidual(*cfg) for cfg in ch]
        layers.append(_conv_bn(last_in, 6 * last_in, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.embedding_dim = 6 * last_in
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(self.embedding_dim, _divisible(LAST_CHANNEL * width)),
            nn.Hardswish(), nn.Dropout(dropout), nn.Linear(_divisible(LAST_CHANNEL * width), n_classes))

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """Pooled feature vector ``(B, embedding_dim)``: the classifier's input."""
        return self.features(spec).mean(dim=(2, 3))

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`embed`'s output (the classifier after its pooling)."""
        return self.classifier[2:](embedding)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(spec))


def load_audioset(path: str | Path | None = None) -> MobileNetV3:
    """The full 527-class AudioSet network with its weights (strict loading)."""
    net = MobileNetV3(AUDIOSET_CLASSES)
    net.load_state_dict(torch.load(path or weights_path(), map_location="cpu", weights_only=True), strict=True)
    return net.eval()


def build(labels: Sequence[str], weights: str | Path | None = None, head: str = "audioset",
          dropout: float = 0.2, arch: str = "mobilenet") -> GenreNet:
    """AudioSet-pretrained mn04 with a ``len(labels)``-way output layer.

    ``head="audioset"`` copies the AudioSet classifier rows of the labels' genres (see
    :data:`GENRE_TO_AUDIOSET`), so the untrained net gives the AudioSet net's own genre logits;
    ``head="random"`` starts the last layer afresh (for label sets outside that map).
    """
    if head not in ("audioset", "random"):
        raise ValueError(f"mobilenet head must be 'audioset' or 'random', not {head!r}")
    source = load_audioset(weights)
    net = MobileNetV3(len(labels), dropout=dropout)
    state = source.state_dict()
    if head == "audioset":
        ids = audioset_class_ids(labels)
        state["classifier.5.weight"] = state["classifier.5.weight"][ids]
        state["classifier.5.bias"] = state["classifier.5.bias"][ids]
    else:
        state["classifier.5.weight"] = net.classifier[5].weight.detach()
        state["classifier.5.bias"] = net.classifier[5].bias.detach()
    net.load_state_dict(state, strict=True)
    return GenreNet(arch, labels, FRONTEND, net)


class Detectors(nn.Module):
    """AudioSet hidden-layer activations -> the sigmoid of each :data:`DETECTORS` class (untrained rows).

    ``forward(hidden) -> (B, len(DETECTORS))``; :attr:`descriptions` is what ``ModelMeta.detectors`` says.
    """

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        ids = audioset_index(list(DETECTORS.values()))
        last = load_audioset(weights).classifier[5]
        self.linear = nn.Linear(last.in_features, len(ids))
        with torch.no_grad():
            self.linear.weight.copy_(last.weight[ids])
            self.linear.bias.copy_(last.bias[ids])
        self.descriptions = {name: f"sigmoid probability of AudioSet class {cls!r} (index {i}), shape (batch,)"
                             for (name, cls), i in zip(DETECTORS.items(), ids)}

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(hidden))


class DetectorNet(GenreNet):
    """A mobilenet :class:`GenreNet` that also outputs AudioSet presence probabilities.

    ``forward(wave) -> (logits, speech)``: the genre logits exactly as the wrapped net's, and
    for each :data:`DETECTORS` entry the sigmoid of that AudioSet class's own (untrained) output,
    shape ``(batch,)``. The runtime's ``speech`` state reads these outputs (see
    ``ModelMeta.detectors``); :func:`training.export.export_onnx` names them from ``output_names``.
    """

    def __init__(self, net: GenreNet, weights: str | Path | None = None):
        super().__init__(net.arch, net.labels, net.frontend_params, net.backbone, net.window_seconds)
        self.detector = Detectors(weights)
        self.output_names = ("logits", *DETECTORS)
        self.detectors = self.detector.descriptions

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, ...]:
        classifier = self.backbone.classifier
        hidden = classifier[2:5](self.backbone.embed(self.frontend(wave)))  # Linear, Hardswish, Dropout
        return (classifier[5](hidden), *self.detector(hidden).unbind(1))
