"""``wavelet``: the ``cnn`` backbone on a Morlet wavelet scalogram instead of a log-mel.

The scalogram (:class:`training.frontend.MorletScalogram`: 7 octaves x 8 scales, centres 60 Hz - 7 kHz,
20-ms frames; 3 s -> 56 x 150) is computed inside the model, so it is part of the exported graph.
Late fusion with the log-mel ``cnn`` (the two branches' probabilities averaged) is an ensemble of
the two runs: ``python -m training ensemble`` scores it, ``python -m training export --run A --run B``
exports it as one graph (:mod:`training.ensemble`).
"""

from __future__ import annotations

from typing import Sequence

from ..frontend import MorletScalogram, Scalogram
from . import cnn
from .genrenet import GenreNet

FRONTEND = cnn.FRONTEND
"""Recorded in the metadata for its sample rate (16 kHz, the same audio as ``cnn``); the graph
computes the scalogram, not this log-mel."""


def build(labels: Sequence[str], dropout: float = 0.3, **scalogram) -> GenreNet:
    """A fresh ``wavelet`` GenreNet; ``scalogram`` overrides :class:`~training.frontend.Scalogram` fields."""
    params = Scalogram(sample_rate=FRONTEND.sample_rate, **scalogram)
    return GenreNet("wavelet", labels, FRONTEND, cnn.SmallCNN(len(labels), dropout=dropout),
                    frontend=MorletScalogram(params))
