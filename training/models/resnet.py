"""``resnet18`` / ``resnet34``: torchvision's ResNet layout with a 1-channel stem.

Parameter names follow torchvision (``conv1``, ``bn1``, ``layer1..4``, ``fc``; ``BasicBlock`` with
``downsample.0/.1``) so an ImageNet ``state_dict`` loads with :func:`load_imagenet` (RGB stem
kernels summed into one channel, ``fc`` skipped). torchvision itself is not needed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from . import cnn
from .genrenet import GenreNet

FRONTEND = dataclasses.replace(cnn.FRONTEND, n_mels=96)
"""``cnn``'s front end with 96 bands (3 s -> 96 x 188); the stride-32 trunk leaves 3 x 6."""

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
"""Blocks per stage."""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1-conv ``downsample``) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """``(B, 1, M, F)`` -> logits with torchvision's ResNet-18/34 structure and names (``width`` 64: its channels)."""

    def __init__(self, depth: int, n_classes: int, dropout: float = 0.3, width: int = 64):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"resnet depth must be one of {sorted(DEPTHS)}")
        self.conv1 = nn.Conv2d(1, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c_in = width
        for i, (n_blocks, c_out) in enumerate(zip(DEPTHS[depth], (width, 2 * width, 4 * width, 8 * width)), start=1):
            stride = 1 if i == 1 else 2
            blocks = [BasicBlock(c_in, c_out, stride)] + [BasicBlock(c_out, c_out) for _ in range(n_blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * width, n_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(spec))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def load_imagenet(net: ResNet, path: str | Path) -> None:
    """Load a torchvision-named ImageNet ``state_dict`` from ``path`` into ``net`` (strict, bar ``fc``).

    ``conv1``'s RGB kernels are summed into the single spectrogram channel; ``fc.*`` is skipped.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    state["conv1.weight"] = state["conv1.weight"].sum(dim=1, keepdim=True)
    state["fc.weight"], state["fc.bias"] = net.fc.weight.detach(), net.fc.bias.detach()
    net.load_state_dict(state, strict=True)


def build(labels: Sequence[str], depth: int = 18, init: str | Path | None = None, dropout: float = 0.3,
          width: int = 64) -> GenreNet:
    """A ``resnet18``/``resnet34`` GenreNet, optionally initialised from ImageNet weights at ``init`` (width 64)."""
    net = ResNet(depth, len(labels), dropout=dropout, width=width)
    if init is not None:
        load_imagenet(net, init)
    return GenreNet(f"resnet{depth}", labels, FRONTEND, net)
