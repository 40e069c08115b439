"""``mixer``: an MLP-Mixer over spectrogram patches (token- and channel-mixing MLPs)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import cnn
from .genrenet import WINDOW_SECONDS, GenreNet
from ..frontend import frame_count

FRONTEND = cnn.FRONTEND
"""``cnn``'s cheap 16-kHz, 64-band front end (3 s -> 64 x 188)."""


class MixerBlock(nn.Module):
    """LayerNorm + token-mixing MLP, then LayerNorm + channel-mixing MLP, each with a residual."""

    def __init__(self, n_tokens: int, dim: int, token_hidden: int, channel_hidden: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(n_tokens, token_hidden), nn.GELU(), nn.Dropout(dropout),
                                       nn.Linear(token_hidden, n_tokens))
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, channel_hidden), nn.GELU(), nn.Dropout(dropout),
                                         nn.Linear(channel_hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, tokens, dim)
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class Mixer(nn.Module):
    """``(B, 1, M, F)`` -> logits; the input size is fixed (token-mixing needs a fixed token count)."""

    def __init__(self, n_classes: int, spec_shape: tuple[int, int], patch: tuple[int, int] = (8, 8),
                 dim: int = 128, depth: int = 6, token_hidden: int = 128, channel_hidden: int = 256,
                 dropout: float = 0.1):
        super().__init__()
        grid = (spec_shape[0] // patch[0], spec_shape[1] // patch[1])
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        self.blocks = nn.Sequential(*[MixerBlock(grid[0] * grid[1], dim, token_hidden, channel_hidden, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(spec).flatten(2).transpose(1, 2)  # (B, tokens, dim)
        x = self.norm(self.blocks(x)).mean(dim=1)
        return self.head(self.dropout(x))


def build(labels: Sequence[str], **kw) -> GenreNet:
    """A fresh ``mixer`` GenreNet; ``kw`` goes to :class:`Mixer` (patch, dim, depth, ...)."""
    n_frames = frame_count(FRONTEND, int(round(WINDOW_SECONDS * FRONTEND.sample_rate)))
    return GenreNet("mixer", labels, FRONTEND, Mixer(len(labels), (FRONTEND.n_mels, n_frames), **kw))
