"""``GenreNet``: front end + backbone, the unit that is trained and exported."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from ..frontend import LogMel, frame_count

WINDOW_SECONDS = 3.0
"""Every model classifies 3-s windows."""


class GenreNet(nn.Module):
    """``forward(wave (B, T)) -> logits (B, len(labels))`` = ``backbone(frontend(wave))``.

    The trainer may transform the spectrogram between ``frontend`` and ``backbone`` (SpecAugment).
    """

    def __init__(self, arch: str, labels: Sequence[str], frontend_params: FrontEnd, backbone: nn.Module,
                 window_seconds: float = WINDOW_SECONDS):
        super().__init__()
        self.arch = arch
        self.labels = tuple(labels)
        self.frontend_params = frontend_params
        self.window_seconds = window_seconds
        self.frontend = LogMel(frontend_params)
        self.backbone = backbone

    @property
    def window_samples(self) -> int:
        """Samples in one input window at the front end's rate."""
        return int(round(self.window_seconds * self.frontend_params.sample_rate))

    @property
    def spec_shape(self) -> tuple[int, int]:
        """``(n_mels, frames)`` of one window's spectrogram."""
        return self.frontend_params.n_mels, frame_count(self.frontend_params, self.window_samples)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.frontend(wave))
