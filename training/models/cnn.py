"""``cnn``: a small VGG-style CNN (conv3x3-BN-ReLU-maxpool blocks, global pooling, linear head)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from .genrenet import GenreNet

FRONTEND = FrontEnd(sample_rate=16000, n_fft=512, win_length=512, hop_length=256, window="hann_periodic",
                    center=True, pad_mode="constant", preemphasis=0.0, n_mels=64, fmin=0.0, fmax=8000.0,
                    mel_scale="slaney", log_offset=1e-6, norm_shift=5.0, norm_scale=3.5)
"""Cheap 16-kHz, 64-band front end for CPU training (3 s -> 64 x 188); the shift and scale bring
music's log-mel to about zero mean, unit variance."""


class SmallCNN(nn.Module):
    """``(B, 1, M, F)`` -> logits: ``len(channels)`` conv blocks, mean+max pooling, dropout, linear."""

    def __init__(self, n_classes: int, channels: Sequence[int] = (32, 64, 128, 256), dropout: float = 0.3):
        super().__init__()
        blocks, c_in = [], 1
        for c in channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * c_in, n_classes)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.features(spec).mean(dim=2)  # average over frequency -> (B, C, frames)
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.fc(self.dropout(x))


def build(labels: Sequence[str], dropout: float = 0.3) -> GenreNet:
    """A fresh, randomly initialised ``cnn`` GenreNet."""
    return GenreNet("cnn", labels, FRONTEND, SmallCNN(len(labels), dropout=dropout))
