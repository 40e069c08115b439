"""``GenreNet``: front end + backbone, the unit that is trained and exported."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from ..frontend import LogMel

WINDOW_SECONDS = 3.0
"""Every model classifies 3-s windows."""


class GenreNet(nn.Module):
    """``forward(wave (B, T)) -> logits (B, len(labels))`` = ``backbone(frontend(wave))``.

    ``frontend`` (waveform -> backbone input, see :mod:`training.frontend`) defaults to the log-mel of
    ``frontend_params``; whatever it is, ``frontend_params`` is what the exported metadata records
    (the sample rate the runtime feeds; the log-mel settings when that is the front end). The
    trainer may transform a spectrogram-like output between ``frontend`` and ``backbone`` (SpecAugment).
    """

    def __init__(self, arch: str, labels: Sequence[str], frontend_params: FrontEnd, backbone: nn.Module,
                 window_seconds: float = WINDOW_SECONDS, frontend: nn.Module | None = None):
        super().__init__()
        self.arch = arch
        self.labels = tuple(labels)
        self.frontend_params = frontend_params
        self.window_seconds = window_seconds
        self.frontend = frontend if frontend is not None else LogMel(frontend_params)
        self.backbone = backbone

    @property
    def window_samples(self) -> int:
        """Samples in one input window at the front end's rate."""
        return int(round(self.window_seconds * self.frontend_params.sample_rate))

    @property
    def spec_shape(self) -> tuple[int, ...]:
        """Shape of one window's front-end output after the channel axis (``(n_mels, frames)`` for a log-mel)."""
        return tuple(self.frontend.output_shape(self.window_samples))

    def frontend_description(self) -> dict:
        """What the graph computes from the waveform (``frontend.describe()``), for the exported metadata."""
        return self.frontend.describe()

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.frontend(wave))
