"""``raw1d``: a sample-level 1-D CNN on the raw waveform (the SampleCNN family, Lee et al. 2017).

No spectrogram: a strided first convolution over 3 samples (stride 3) learns the filterbank, then
blocks of conv(3)-BN-ReLU-maxpool(3) shrink 16 000 frames (3 s at 16 kHz) by 3 each, a global
mean and max over time, dropout and a linear layer. The published SampleCNN is wider (128-512
channels, 59 049-sample input); the default widths (16-256, 0.2 M parameters, about 0.6x ``cnn``'s
training step on this CPU) fit this project's CPU budget.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..frontend import Waveform
from . import cnn
from .genrenet import GenreNet

FRONTEND = cnn.FRONTEND
"""Recorded in the metadata for its sample rate (16 kHz, shared with ``cnn``'s audio cache); the
graph itself reads the samples directly (:class:`training.frontend.Waveform`)."""

CHANNELS = (16, 16, 32, 32, 64, 64, 128, 128, 256)
"""Width of the strided first layer, then of each conv-pool block."""


class SampleCNN(nn.Module):
    """``(B, 1, T)`` -> logits: strided sample-level conv, ``len(channels) - 1`` conv-pool blocks, mean+max, linear."""

    def __init__(self, n_classes: int, channels: Sequence[int] = CHANNELS, first_stride: int = 3,
                 dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(1, channels[0], first_stride, stride=first_stride, bias=False),
                                   nn.BatchNorm1d(channels[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm1d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool1d(3, ceil_mode=True)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * channels[-1], n_classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = self.features(wave)
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.fc(self.dropout(x))


def build(labels: Sequence[str], channels: Sequence[int] = CHANNELS, first_stride: int = 3,
          dropout: float = 0.3) -> GenreNet:
    """A fresh, randomly initialised ``raw1d`` GenreNet."""
    net = SampleCNN(len(labels), tuple(channels), first_stride, dropout)
    return GenreNet("raw1d", labels, FRONTEND, net, frontend=Waveform(FRONTEND.sample_rate))
