"""Genre heads on frozen backbone embeddings (:mod:`training.features`), trained by :class:`training.trainer.Trainer`.

A head reads one row of concatenated embeddings (the backbones of :attr:`HeadConfig.backbones`, in that
order) and returns genre logits. Kinds:

- ``audioset``: the AudioSet network's own MLP head, started from its genre rows and pulled back toward
  them by an L2-SP penalty (the previous default's method).
- ``residual``: that AudioSet head plus a correction read from the other backbones' standardised
  embeddings; the correction starts at zero, so training starts from the AudioSet answer.
- ``mlp``: an MLP (or, with ``hidden = 0``, a linear layer) on all standardised embeddings, from scratch.
- ``late``: late fusion -- a linear layer on the backbones' own standardised outputs (AudioSet's ten genre
  logits, musicnn's 50 tag logits).

Rows of genres the training data know from fewer than ``protect_below`` artists read the untrained
AudioSet genre logits instead and are left out of the loss (needs the ``audioset`` backbone).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .backbones import Backbone
from .trainer import TrainConfig

KINDS = ("audioset", "residual", "mlp", "late")
TRAIN_PARTS = ("head", "last", "bias")


@dataclass
class HeadConfig:
    """What a head reads and how it is built and regularised."""

    kind: str = "residual"
    """``audioset``, ``residual``, ``mlp`` or ``late`` (see the module docstring)."""
    backbones: tuple[str, ...] = ("audioset", "musicnn-msd")
    """Backbones whose embeddings the head reads, in order (``audioset`` first for the AudioSet kinds)."""
    hidden: int = 0
    """Hidden width of the ``mlp`` head and of the ``residual`` correction (0: linear)."""
    dropout: float = 0.3
    """Dropout on the standardised inputs (and hidden layer) of the ``mlp``/``residual``/``late`` parts."""
    l2sp: float = 0.03
    """Pull of the AudioSet head toward its start: ``l2sp * sum((w - w0)^2)``."""
    train_part: str = "head"
    """AudioSet head parts trained: ``head`` (both layers), ``last`` (output layer), ``bias`` (its biases)."""
    protect_below: int = 0
    """Keep the AudioSet rows of genres with fewer training artists than this (0: train every row)."""
    views: str = "augmented"
    """Training windows: ``clean`` (the hop grid as heard), ``augmented`` (jittered, gain, noise, masks) or
    ``all``."""
    rows: str = "windows"
    """Training rows: ``windows`` (every augmented window) or ``tracks`` (each augmented view of a track
    averaged over its windows: fewer, steadier rows). Validation and use are per window either way."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=30, batch_size=256, lr=1e-3, weight_decay=1e-2, patience=8, grad_clip=5.0, label_smoothing=0.1,
        device="cpu"))
    """Optimisation of the head."""

    def check(self) -> None:
        """Raise ``ValueError`` on an inconsistent config."""
        if self.kind not in KINDS:
            raise ValueError(f"head kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.train_part not in TRAIN_PARTS:
            raise ValueError(f"train_part must be one of {', '.join(TRAIN_PARTS)}, not {self.train_part!r}")
        needs_audioset = self.kind in ("audioset", "residual") or self.protect_below > 0
        if needs_audioset and (not self.backbones or self.backbones[0] != "audioset"):
            raise ValueError(f"a {self.kind} head (or protected rows) needs 'audioset' as its first backbone")
        if self.kind == "audioset" and len(self.backbones) != 1:
            raise ValueError("an audioset head reads the audioset backbone only")
        if self.rows not in ("windows", "tracks"):
            raise ValueError(f"rows must be 'windows' or 'tracks', not {self.rows!r}")
        if self.kind == "residual" and len(self.backbones) < 2:
            raise ValueError("a residual head needs a backbone besides audioset")


class Standardise(nn.Module):
    """``(x - mean) / std`` with statistics fixed from training rows (exported as constants)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.detach().float().clone())
        self.register_buffer("std", std.detach().float().clamp_min(1e-6))

    @classmethod
    def fit(cls, rows: torch.Tensor) -> "Standardise":
        """Statistics of ``rows`` (``(N, D)``); a column's scale is at least 1 % of the median column's.

        The floor matters: musicnn's embeddings hold nearly constant columns (dead units), and dividing
        float noise by a near-zero spread would make the head hang on rounding.
        """
        rows = rows.detach().float()
        std = rows.std(dim=0) if len(rows) > 1 else torch.ones(rows.shape[1])
        std = torch.nan_to_num(std, nan=1.0)
        return cls(rows.mean(dim=0), std.clamp_min(max(1e-6, 0.01 * float(std.median()))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _mlp(d_in: int, hidden: int, n_out: int, dropout: float, zero_out: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    if hidden:
        layers += [nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout)]
        d_in = hidden
    layers.append(nn.Linear(d_in, n_out))
    if zero_out:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def exclude_classes(logits: torch.Tensor, excluded: torch.Tensor, margin: float = 30.0) -> torch.Tensor:
    """Take the ``excluded`` classes out of a softmax cross-entropy: no gradient to them, no rivalry.

    Their logits become the log-sum-exp of the others minus ``margin``, so their log-probabilities
    are constant: any target mass on them (label smoothing spreads some over every class) adds a
    constant to the loss instead of pushing every other logit down.
    """
    floor = logits[:, ~excluded].logsumexp(dim=1, keepdim=True) - margin
    return torch.where(excluded, floor, logits)


class AudioSetHead(nn.Module):
    """A trainable copy of the AudioSet network's genre head (``Linear-Hardswish-Dropout-Linear``)."""

    def __init__(self, audioset: Backbone, train_part: str):
        super().__init__()
        self.mlp = copy.deepcopy(audioset.network.net.classifier[2:]).requires_grad_(True)
        if train_part in ("last", "bias"):
            self.mlp[0].requires_grad_(False)
        if train_part == "bias":
            self.mlp[3].weight.requires_grad_(False)
        for i, p in enumerate(self.mlp.parameters()):
            self.register_buffer(f"start{i}", p.detach().clone())

    @property
    def start(self) -> list[torch.Tensor]:
        """The AudioSet weights the head started from (w1, b1, w2, b2)."""
        return [getattr(self, f"start{i}") for i in range(4)]

    def zero_shot(self, emb: torch.Tensor) -> torch.Tensor:
        """The untrained AudioSet genre logits."""
        w1, b1, w2, b2 = self.start
        return nn.functional.linear(nn.functional.hardswish(nn.functional.linear(emb, w1, b1)), w2, b2)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.mlp(emb)

    def l2sp(self, strength: float) -> torch.Tensor:
        """``strength * sum((w - w_start)^2)`` over the trainable weights."""
        return strength * sum(((p - p0) ** 2).sum() for p, p0 in zip(self.mlp.parameters(), self.start)
                              if p.requires_grad)


class GenreHead(nn.Module):
    """Concatenated embeddings ``(B, sum of dims)`` -> genre logits ``(B, len(labels))``.

    ``train_x``: the training rows, whose statistics standardise the inputs (``None`` when the
    state, statistics included, is loaded afterwards).
    """

    def __init__(self, cfg: HeadConfig, backbones: Sequence[Backbone], labels: Sequence[str],
                 train_x: torch.Tensor | None = None):
        super().__init__()
        cfg.check()
        if [b.name for b in backbones] != list(cfg.backbones):
            raise ValueError(f"head config reads {cfg.backbones}, got backbones {[b.name for b in backbones]}")
        self.cfg, self.labels = cfg, tuple(labels)
        self.edges = np.cumsum([0, *[b.dim for b in backbones]]).tolist()
        n = len(labels)
        self.audioset = AudioSetHead(backbones[0], cfg.train_part) if backbones[0].name == "audioset" else None
        if train_x is None:
            train_x = torch.zeros(2, self.edges[-1])
        if cfg.kind == "late":
            self.score_layers = nn.ModuleList(_frozen_scores(b) for b in backbones)
            self.norm = Standardise.fit(self._scores(train_x))
            self.out = _mlp(self.norm.mean.numel(), 0, n, cfg.dropout, zero_out=False)
        elif cfg.kind in ("mlp", "residual"):
            lo = self.edges[1] if cfg.kind == "residual" else 0
            self.norm = Standardise.fit(train_x[:, lo:])
            self.out = _mlp(self.edges[-1] - lo, cfg.hidden, n, cfg.dropout, zero_out=cfg.kind == "residual")
        self.register_buffer("frozen", torch.zeros(n, dtype=torch.bool))
        self.protected: tuple[str, ...] = ()
        """Labels whose rows give the untrained AudioSet logits (see :meth:`protect`)."""

    def protect(self, labels: Sequence[str]) -> None:
        """Rows of ``labels`` read the untrained AudioSet genre logits and leave the training softmax."""
        if labels and self.audioset is None:
            raise ValueError("protected rows need the audioset backbone")
        self.protected = tuple(labels)
        self.frozen[:] = torch.tensor([label in self.protected for label in self.labels])

    def _scores(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([layer(x[:, lo:hi]) for layer, lo, hi in
                              zip(self.score_layers, self.edges[:-1], self.edges[1:])], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = self.cfg.kind
        if kind == "late":
            logits = self.out(self.norm(self._scores(x)))
        elif kind == "mlp":
            logits = self.out(self.norm(x))
        else:
            emb = x[:, :self.edges[1]]
            logits = self.audioset(emb)
            if kind == "residual":
                logits = logits + self.out(self.norm(x[:, self.edges[1]:]))
        if self.protected:
            logits = torch.where(self.frozen, self.audioset.zero_shot(x[:, :self.edges[1]]), logits)
            if self.training:
                logits = exclude_classes(logits, self.frozen)
        return logits

    def penalty(self) -> torch.Tensor:
        """The L2-SP pull of the AudioSet head (0 without one)."""
        if self.audioset is None or self.cfg.kind not in ("audioset", "residual"):
            return torch.zeros(())
        return self.audioset.l2sp(self.cfg.l2sp)


def _frozen_scores(backbone: Backbone) -> nn.Module:
    """A frozen copy of the layers that turn ``backbone``'s embedding into its own outputs."""
    net = backbone.network
    layers = copy.deepcopy(net.net.classifier[2:] if backbone.name == "audioset" else net.out)
    return layers.requires_grad_(False).eval()


def thin_classes(groups_by_label: dict[str, set[str]], labels: Sequence[str], min_artists: int) -> list[str]:
    """Labels known from fewer than ``min_artists`` artists (groups)."""
    return [label for label in labels if len(groups_by_label.get(label, ())) < min_artists]


class Calibrated(nn.Module):
    """``logits / temperature``: a temperature fitted on validation windows (:func:`fit_temperature`)."""

    def __init__(self, head: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.head = head
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x) / self.temperature


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the cross-entropy of ``softmax(logits / T)`` (one scalar, LBFGS on log T)."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))
