"""Model registry: ``build_model(arch, labels, **kw) -> GenreNet``."""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

from . import cnn, mixer, mobilenet, musicnn, raw1d, resnet, wavelet
from .genrenet import WINDOW_SECONDS, GenreNet

ARCHS: dict[str, Callable[..., GenreNet]] = {
    "cnn": cnn.build,
    "resnet18": partial(resnet.build, depth=18),
    "resnet34": partial(resnet.build, depth=34),
    "mixer": mixer.build,
    "raw1d": raw1d.build,
    "wavelet": wavelet.build,
    "mobilenet": mobilenet.build,
    "audioset-zeroshot": partial(mobilenet.build, head="audioset", arch="audioset-zeroshot"),
    "musicnn-zeroshot": musicnn.build_zeroshot,
}
"""Architecture name -> builder; ``audioset-zeroshot`` is the untrained ``mobilenet``, ``musicnn-zeroshot``
the untrained musicnn MSD tagger with its genre tags."""

__all__ = ["ARCHS", "GenreNet", "WINDOW_SECONDS", "build_model"]


def build_model(arch: str, labels: Sequence[str], **kw) -> GenreNet:
    """Build a fresh GenreNet of ``arch`` for ``labels``; ``kw`` are the arch's options."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    return ARCHS[arch](labels, **kw)
