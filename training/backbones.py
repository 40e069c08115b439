"""Frozen pretrained networks that feed the transfer heads, all reading the same 32-kHz 3-s window.

A :class:`Backbone` is a front end plus a pretrained network, never trained here: ``embed(spec)`` gives
the window's embedding, ``scores(emb)`` the network's own music-style outputs (AudioSet's ten genre
classes; musicnn's 50 tags) and ``zero_shot(emb)`` its answer over the GTZAN genres without training.
Every backbone reads audio at :data:`RATE`, so one exported graph takes one waveform: musicnn's 16-kHz
analysis is read from 32-kHz audio (:data:`training.models.musicnn.FRONTEND_32K`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from .frontend import LogMel
from .models import mobilenet, musicnn
from .models.mobilenet import GTZAN_GENRES as GENRES

RATE = 32000
"""Sample rate of every backbone's input (the AudioSet network's own)."""
NAMES = ("audioset", "musicnn-msd", "musicnn-mtt")
"""Known backbones."""
MTT_GENRE_TAGS = {"classical": ("classical", "classic"), "country": ("country",), "metal": ("metal",),
                  "pop": ("pop",), "rock": ("rock",)}
"""GTZAN genre -> the MagnaTagATune tags that name it (for musicnn-mtt's zero-shot answer)."""


class Backbone(nn.Module):
    """One frozen pretrained network and its front end (eval mode, no gradients)."""

    def __init__(self, name: str, frontend: FrontEnd, network: nn.Module, genre_head: nn.Module,
                 weights: Path, licence: str, provenance: str):
        super().__init__()
        self.name = name
        self.frontend_params = frontend
        self.frontend = LogMel(frontend)
        self.network = network
        self.genre_head = genre_head
        self.dim: int = network.embedding_dim
        self.weights = weights
        """Pretrained weights file (its SHA-256 goes into every export's provenance)."""
        self.licence = licence
        """Licence notice that travels with any model derived from the weights."""
        self.provenance = provenance
        """Where the weights come from, in words."""
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "Backbone":
        """Always evaluation mode: the backbone is frozen (batch norms keep their statistics)."""
        return super().train(False)

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """Embedding ``(B, dim)`` of front-end output ``spec``."""
        return self.network.embed(spec)

    def scores(self, emb: torch.Tensor) -> torch.Tensor:
        """The network's own music-style logits for an embedding."""
        return self.network.head(emb)

    def zero_shot(self, emb: torch.Tensor) -> torch.Tensor:
        """Untrained logits over :data:`GENRES` (genres the network has no output for get a floor logit)."""
        return self.genre_head(self.scores(emb))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.embed(self.frontend(wave))


class AudioSetGenres(nn.Module):
    """AudioSet's ten genre-class logits are already GTZAN-genre logits (see :data:`mobilenet.GENRE_TO_AUDIOSET`)."""

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores


class AudioSetNetwork(nn.Module):
    """The AudioSet MobileNet with its output layer cut to the ten genre rows (as ``audioset-zeroshot``)."""

    def __init__(self):
        super().__init__()
        self.net = mobilenet.build(GENRES).backbone
        self.embedding_dim = self.net.embedding_dim

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """The 384-d pooled features."""
        return self.net.embed(spec)

    def head(self, emb: torch.Tensor) -> torch.Tensor:
        """The ten AudioSet genre logits."""
        return self.net.head(emb)


def build(name: str) -> Backbone:
    """A frozen backbone by name (one of :data:`NAMES`), weights from the shared folder."""
    if name == "audioset":
        return Backbone(name, mobilenet.FRONTEND, AudioSetNetwork(), AudioSetGenres(), mobilenet.weights_path(),
                        mobilenet.licence_text(), "EfficientAT mn04_as (F. Schmid), AudioSet mAP 0.432, MIT")
    if name in ("musicnn-msd", "musicnn-mtt"):
        variant = name.split("-")[1]
        mapping = musicnn.MSD_GENRE_TAGS if variant == "msd" else MTT_GENRE_TAGS
        genres = musicnn.TagGenres(musicnn.tag_names(variant), GENRES, mapping)
        return Backbone(name, musicnn.FRONTEND_32K, musicnn.load_musicnn(variant), genres,
                        musicnn.weights_path(variant), musicnn.licence_text(),
                        f"musicnn {variant.upper()} tagger (J. Pons & X. Serra, MTG-UPF 2019), ISC")
    raise ValueError(f"unknown backbone {name!r} (known: {', '.join(NAMES)})")


def build_all(names: Sequence[str]) -> list[Backbone]:
    """:func:`build` for each name, in order; an empty or repeated list is an error."""
    if not names or len(set(names)) != len(names):
        raise ValueError(f"backbones must be distinct and at least one, got {list(names)}")
    return [build(n) for n in names]
