"""``musicnn``: J. Pons & X. Serra's musically motivated CNN tagger (MSD and MTT), for its published weights.

Built from the description in ``../shared/README.md`` (facts from the public musicnn project, ISC
licence): batch-normalised log-mel image (time, freq) -> two timbral convolutions (7 frames x 38 and
x 67 bands, 204 filters) and three temporal ones (128, 64, 32 frames x 1 band, 51 filters), each
ReLU -> batch norm -> max over frequency, concatenated to 561 features per frame -> three 7-frame
convolutions of 64 filters (the last two residual) -> max and mean over time of all 753 features,
interleaved -> batch norm -> dense 200 -> ReLU -> batch norm (the "penultimate" embedding) -> dense
50 tag logits. Batch norms use TensorFlow's epsilon (1e-3). :func:`load_musicnn` loads the converted
checkpoint by name: every array is used and none is left over.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from streamtag.modelmeta import FrontEnd

from .genrenet import GenreNet
from .mobilenet import shared_dir

VARIANTS = ("msd", "mtt")
"""Published checkpoints: Million Song Dataset last.fm tags and MagnaTagATune tags."""

FRONTEND = FrontEnd(sample_rate=16000, n_fft=512, win_length=512, hop_length=256, window="hann_periodic",
                    center=True, pad_mode="constant", preemphasis=0.0, n_mels=96, fmin=0.0, fmax=8000.0,
                    mel_scale="slaney", log_offset=1e-4, norm_shift=4 * math.log(10), norm_scale=math.log(10))
"""musicnn's own front end, fixed by its training: librosa's power mel at 16 kHz (n_fft 512, hop 256,
96 Slaney bands to 8 kHz) and ``log10(10000 mel + 1)``, written as ``(ln(mel + 1e-4) + 4 ln 10) / ln 10``."""

FRONTEND_32K = FrontEnd(sample_rate=32000, n_fft=1024, win_length=1024, hop_length=512, window="hann_periodic",
                        center=True, pad_mode="constant", preemphasis=0.0, n_mels=96, fmin=0.0, fmax=8000.0,
                        mel_scale="slaney", log_offset=4e-4, norm_shift=4 * math.log(10) - math.log(4),
                        norm_scale=math.log(10), resampled_to=16000)
"""The same analysis read from 32-kHz audio, so one graph serves musicnn beside the 32-kHz AudioSet net:
twice the FFT size and hop keep the 31.25-Hz bins and 16-ms frames, the bands stop at 8 kHz as before,
a frame of twice the samples has four times the power, which ``log(mel / 4 + 1e-4)`` undoes, and the bank
carries the 16-kHz resampler's low-pass (``resampled_to``), whose edge the network learned to expect."""

PATCH_FRAMES = 187
"""Frames per input patch (3 s), as musicnn was trained."""
TIMBRAL = ((38, 204), (67, 204))
"""(bands, filters) of the two timbral convolutions (7 frames tall)."""
TEMPORAL = ((128, 51), (64, 51), (32, 51))
"""(frames, filters) of the three temporal convolutions (1 band wide, "same" padding)."""
MID_FILTERS = 64
DENSE = 200
N_TAGS = 50
BN_EPS = 1e-3
DEAD_FILTER = 1e-6
"""A filter whose largest weight is below this fraction of its layer's largest is dead (see ConvReluNorm)."""


def weights_path(variant: str) -> Path:
    """The converted checkpoint ``musicnn-<variant>.npz``."""
    if variant not in VARIANTS:
        raise ValueError(f"musicnn variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    return shared_dir() / "weights" / f"musicnn-{variant}.npz"


def licence_text() -> str:
    """musicnn's ISC notice, which every model derived from its weights carries."""
    return (shared_dir() / "weights" / "LICENSE-musicnn.txt").read_text()


def tag_names(variant: str) -> tuple[str, ...]:
    """The 50 tags of ``variant`` in output order (``musicnn-tags.txt``)."""
    for line in (shared_dir() / "weights" / "musicnn-tags.txt").read_text().splitlines():
        name, _, tags = line.partition(":")
        if name.strip() == variant:
            return tuple(t.strip() for t in tags.split(","))
    raise ValueError(f"no tag list for musicnn-{variant}")


def _same_pad(kernel: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: the odd extra frame goes after."""
    return (kernel - 1) // 2, kernel // 2


class ConvReluNorm(nn.Module):
    """conv -> ReLU -> batch norm (eval statistics), able to skip filters whose kernel is all zero.

    The published checkpoints hold many dead filters, decayed to weights of 1e-7 and below while the
    live ones reach 0.1 (musicnn-msd: 371 of the 408 timbral filters): their output is ``bn(relu(bias))``
    to within float rounding, the same at every position, so :meth:`drop_dead_filters` computes only the
    live filters and fills the rest with those constants -- the same outputs (checked against the
    reference to 1e-6) at a fraction of the cost.
    """

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, channels: int):
        super().__init__()
        self.conv = conv
        self.bn = (nn.BatchNorm2d if isinstance(conv, nn.Conv2d) else nn.BatchNorm1d)(channels, eps=BN_EPS)
        self.register_buffer("dead_value", torch.zeros(0), persistent=False)
        self.register_buffer("order", torch.arange(channels), persistent=False)

    def forward(self, x: torch.Tensor, pool_freq: bool = False) -> torch.Tensor:
        """All channels, in order; ``pool_freq``: max over the last (frequency) axis first."""
        y = self.bn(torch.relu(self.conv(x)))
        if pool_freq:
            y = y.amax(dim=-1)
        if not len(self.dead_value):
            return y
        shape = [y.shape[0], len(self.dead_value), *y.shape[2:]]
        dead = self.dead_value.reshape(1, -1, *[1] * (y.dim() - 2)).expand(shape)
        return torch.cat([y, dead], dim=1).index_select(1, self.order)

    @torch.no_grad()
    def drop_dead_filters(self) -> int:
        """Keep only filters with a non-zero kernel (exactly the same outputs); returns how many were dropped."""
        conv, bn = self.conv, self.bn
        peak = conv.weight.flatten(1).abs().amax(dim=1)
        dead = peak < DEAD_FILTER * peak.max()
        if not dead.any() or dead.all():
            return 0
        live = (~dead).nonzero().flatten()
        value = (torch.relu(conv.bias[dead]) - bn.running_mean[dead]) / torch.sqrt(bn.running_var[dead] + bn.eps)
        self.dead_value = value * bn.weight[dead] + bn.bias[dead]
        self.order = torch.argsort(torch.cat([live, dead.nonzero().flatten()]))
        kind = type(conv)
        small = kind(conv.in_channels, len(live), conv.kernel_size, padding=conv.padding)
        small.weight.copy_(conv.weight[live])
        small.bias.copy_(conv.bias[live])
        norm = type(bn)(len(live), eps=bn.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(norm, name).copy_(getattr(bn, name)[live])
        self.conv, self.bn = small, norm.eval()
        return int(dead.sum())


class FrequencyMaxBlock(nn.Module):
    """conv -> ReLU -> batch norm -> max over the whole frequency axis: ``(B, 1, T, F) -> (B, C, T)``."""

    def __init__(self, filters: int, kernel: tuple[int, int], time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.layer = ConvReluNorm(nn.Conv2d(1, filters, kernel), filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(nn.functional.pad(x, (0, 0, *self.time_pad)), pool_freq=True)


def mid_end_layer(c_in: int) -> ConvReluNorm:
    """A 7-frame convolution over all features -> ReLU -> batch norm: ``(B, C, T) -> (B, 64, T)``."""
    return ConvReluNorm(nn.Conv1d(c_in, MID_FILTERS, 7, padding=3), MID_FILTERS)


class MusiCNN(nn.Module):
    """``(B, 1, 96, T)`` log-mel (as :class:`training.frontend.LogMel` gives it) -> 50 tag logits."""

    def __init__(self, n_mels: int = 96, patch_frames: int | None = PATCH_FRAMES):
        super().__init__()
        self.patch_frames = patch_frames
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(FrequencyMaxBlock(f, (7, b), (3, 3)) for b, f in TIMBRAL)
        self.temporal = nn.ModuleList(FrequencyMaxBlock(f, (k, 1), _same_pad(k)) for k, f in TEMPORAL)
        front = sum(f for _, f in TIMBRAL) + sum(f for _, f in TEMPORAL)
        self.mid = nn.ModuleList([mid_end_layer(front), mid_end_layer(MID_FILTERS), mid_end_layer(MID_FILTERS)])
        pooled = 2 * (front + 3 * MID_FILTERS)
        self.pool_bn = nn.BatchNorm1d(pooled, eps=BN_EPS)
        self.dense = nn.Linear(pooled, DENSE)
        self.dense_bn = nn.BatchNorm1d(DENSE, eps=BN_EPS)
        self.out = nn.Linear(DENSE, N_TAGS)
        self.embedding_dim = DENSE

    def pooled(self, spec: torch.Tensor) -> torch.Tensor:
        """The back end's input ``(B, 1506)``: max and mean over time of every feature, batch-normalised."""
        x = spec.transpose(2, 3)  # (B, 1, T, F): musicnn's (time, freq) image
        if self.patch_frames is not None:
            x = x[:, :, :self.patch_frames]
        x = self.input_bn(x)
        front = torch.cat([block(x) for block in [*self.timbral, *self.temporal]], dim=1)
        feats, h = [front], front
        for i, layer in enumerate(self.mid):
            h = layer(h) if i == 0 else layer(h) + h
            feats.append(h)
        fmap = torch.cat(feats, dim=1)  # (B, 753, T)
        return self.pool_bn(torch.stack([fmap.amax(dim=2), fmap.mean(dim=2)], dim=2).flatten(1))  # max0, mean0, ...

    def penultimate(self, pooled: torch.Tensor) -> torch.Tensor:
        """The 200-d embedding from :meth:`pooled`'s output (batch norm after the ReLU of ``dense``)."""
        return self.dense_bn(torch.relu(self.dense(pooled)))

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """The 200-d penultimate embedding ``(B, 200)``."""
        return self.penultimate(self.pooled(spec))

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Tag logits from :meth:`embed`'s output (sigmoid gives the tags)."""
        return self.out(embedding)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(spec))


def _conv2d(k: np.ndarray) -> np.ndarray:
    return k.transpose(3, 2, 0, 1)  # [time, freq, in, out] -> [out, in, time, freq]


def _conv1d(k: np.ndarray) -> np.ndarray:
    return k[:, :, 0, :].transpose(2, 1, 0)  # [time, features, 1, out] -> [out, features, time]


def _checkpoint_names() -> dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]]:
    """torch parameter/buffer name -> (checkpoint array name, layout conversion)."""
    same = lambda a: a  # noqa: E731
    names: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {}

    def bn(torch_name: str, i: int) -> None:
        tf = "batch_normalization" + (f"_{i}" if i else "")
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            names[f"{torch_name}.{ours}"] = (f"{tf}/{theirs}", same)

    def layer(torch_name: str, tf: str, convert: Callable[[np.ndarray], np.ndarray]) -> None:
        names[f"{torch_name}.weight"] = (f"{tf}/kernel", convert)
        names[f"{torch_name}.bias"] = (f"{tf}/bias", same)

    bn("input_bn", 0)
    blocks = [f"timbral.{i}" for i in range(len(TIMBRAL))] + [f"temporal.{i}" for i in range(len(TEMPORAL))]
    for i, block in enumerate(blocks):  # checkpoint order: timbral 38, 67, temporal 128, 64, 32
        layer(f"{block}.layer.conv", "conv2d" + (f"_{i}" if i else ""), _conv2d)
        bn(f"{block}.layer.bn", i + 1)
    for i in range(3):
        layer(f"mid.{i}.conv", f"conv2d_{len(blocks) + i}", _conv1d)
        bn(f"mid.{i}.bn", len(blocks) + 1 + i)
    bn("pool_bn", len(blocks) + 4)
    layer("dense", "dense", lambda k: k.T)
    bn("dense_bn", len(blocks) + 5)
    layer("out", "dense_1", lambda k: k.T)
    return names


def load_musicnn(variant: str = "msd", path: str | Path | None = None, prune: bool = True) -> MusiCNN:
    """A :class:`MusiCNN` with the ``variant`` checkpoint loaded by name (strict both ways), in eval mode.

    ``prune``: drop the checkpoint's dead (all-zero) filters afterwards (:meth:`ConvReluNorm.drop_dead_filters`).
    """
    net = MusiCNN()
    names = _checkpoint_names()
    with np.load(path or weights_path(variant)) as z:
        arrays = {k: z[k] for k in z.files}
    own = net.state_dict()
    expected = {k for k in own if not k.endswith("num_batches_tracked")}
    if set(names) != expected:
        raise RuntimeError(f"musicnn name map out of date: {sorted(set(names) ^ expected)}")
    missing = sorted({tf for tf, _ in names.values()} - set(arrays))
    unused = sorted(set(arrays) - {tf for tf, _ in names.values()})
    if missing or unused:
        raise ValueError(f"musicnn checkpoint does not match: missing {missing}, unused {unused}")
    state = {k: v for k, v in own.items() if k.endswith("num_batches_tracked")}
    for ours, (theirs, convert) in names.items():
        value = torch.from_numpy(np.ascontiguousarray(convert(arrays[theirs]), dtype=np.float32))
        if value.shape != own[ours].shape:
            raise ValueError(f"musicnn {theirs}: shape {tuple(value.shape)}, expected {tuple(own[ours].shape)}")
        state[ours] = value
    net.load_state_dict(state, strict=True)
    net.eval()
    if prune:
        for m in list(net.modules()):
            if isinstance(m, ConvReluNorm):
                m.drop_dead_filters()
    return net


MSD_GENRE_TAGS = {
    "blues": ("blues",), "country": ("country",), "hiphop": ("Hip-Hop",), "jazz": ("jazz",),
    "metal": ("metal", "heavy metal"), "pop": ("pop", "indie pop"),
    "rock": ("rock", "classic rock", "hard rock", "alternative rock", "indie rock", "punk", "Progressive rock"),
}
"""GTZAN genre -> the MSD tags that name it (musicnn-msd has no classical, disco or reggae tag)."""
ABSENT_LOGIT = -30.0
"""Zero-shot logit of a genre no tag names: never the argmax, ~0 probability."""


class TagGenres(nn.Module):
    """Tag logits ``(B, 50)`` -> genre logits: each genre's best-scoring tag (max of its tags' logits)."""

    def __init__(self, tags: Sequence[str], labels: Sequence[str], mapping: dict[str, Sequence[str]]):
        super().__init__()
        index = {t: i for i, t in enumerate(tags)}
        unknown = sorted(t for ts in mapping.values() for t in ts if t not in index)
        if unknown:
            raise ValueError(f"unknown tags in the genre map: {', '.join(unknown)}")
        width = max(len(ts) for ts in mapping.values())
        ids = torch.zeros(len(labels), width, dtype=torch.long)
        valid = torch.zeros(len(labels), width, dtype=torch.bool)
        for g, label in enumerate(labels):
            for j, t in enumerate(mapping.get(label, ())):
                ids[g, j], valid[g, j] = index[t], True
        self.register_buffer("ids", ids, persistent=False)
        self.register_buffer("valid", valid, persistent=False)

    def forward(self, tag_logits: torch.Tensor) -> torch.Tensor:
        picked = tag_logits[:, self.ids]  # (B, labels, width)
        return torch.where(self.valid, picked, torch.full_like(picked, ABSENT_LOGIT)).amax(dim=2)


class ZeroShot(nn.Module):
    """musicnn tag network followed by :class:`TagGenres` (a GenreNet backbone)."""

    def __init__(self, net: MusiCNN, genres: TagGenres):
        super().__init__()
        self.net, self.genres = net, genres

    def embed(self, spec: torch.Tensor) -> torch.Tensor:
        """The tag network's penultimate embedding."""
        return self.net.embed(spec)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.genres(self.net(spec))


def build_zeroshot(labels: Sequence[str], variant: str = "msd") -> GenreNet:
    """``musicnn-zeroshot``: the untrained tagger at its own 16-kHz front end, tags mapped to ``labels`` by name."""
    if variant != "msd":
        raise ValueError("the zero-shot genre map is written for musicnn-msd")
    genres = TagGenres(tag_names(variant), labels, MSD_GENRE_TAGS)
    return GenreNet("musicnn-zeroshot", labels, FRONTEND, ZeroShot(load_musicnn(variant), genres))
