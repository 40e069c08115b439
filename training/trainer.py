"""Generic supervised trainer: AdamW + OneCycle, clipping, early stopping, checkpoints, resume.

Works for a full :class:`GenreNet` on waveforms (SpecAugment between ``frontend`` and
``backbone`` when the front end makes an image) and for any small module on cached features. Batches are ``(x, y)`` or
``(x, y, track_index)``; with a track index, early stopping watches track-level (soft-vote)
validation accuracy.

Every epoch reseeds the global, shuffle, crop and augmentation RNGs from ``(seed, epoch)``, so a
resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from streamtag.errors import UsageError

from .augment import AugmentConfig, mixup, spec_augment, wave_augment
from .evaluate import accuracy, predict, track_votes

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings."""

    epochs: int = 30
    """Length of the one-cycle schedule (early stopping may end sooner)."""
    batch_size: int = 32
    lr: float = 1e-3
    """Peak learning rate of the one-cycle schedule."""
    weight_decay: float = 1e-2
    """AdamW decoupled weight decay."""
    grad_clip: float = 5.0
    """Max global gradient norm (0 = off)."""
    patience: int = 8
    """Epochs without validation improvement before stopping (0 = never stop early)."""
    pct_start: float = 0.3
    """Share of steps spent warming up."""
    label_smoothing: float = 0.0
    """Share of each one-hot target spread over all classes."""
    seed: int = 0
    """Seeds weights, shuffling, crops and augmentation (per epoch)."""
    amp: bool = True
    """Mixed precision; only ever used on CUDA."""
    device: str = "auto"
    """``auto`` (CUDA if present, else CPU), ``cpu`` or ``cuda``."""


@dataclass
class FitResult:
    """Outcome of :meth:`Trainer.fit`."""

    best_epoch: int
    best_metric: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of all epochs (including those before a resume)."""

    @property
    def epoch_seconds(self) -> float:
        """Mean wall time per epoch."""
        return self.seconds / max(1, len(self.history))


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


class Trainer:
    """Fits ``model`` and keeps its run folder (``train.log``, ``history.json``, ``checkpoint.pt``, ``best.pt``).

    ``regulariser(model)``, when given, is added to every training loss (e.g. an L2-SP penalty).
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, run_dir: str | Path,
                 augment: AugmentConfig | None = None, n_classes: int | None = None,
                 regulariser: Callable[[torch.nn.Module], torch.Tensor] | None = None):
        self.cfg = cfg
        self.regulariser = regulariser
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device)
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.augment = augment or AugmentConfig.off()
        self.n_classes = n_classes or len(getattr(model, "labels", ())) or None
        if not self.n_classes:
            raise ValueError("n_classes is needed for a model without .labels")
        self.split_model = hasattr(model, "frontend") and hasattr(model, "backbone")
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.gen = torch.Generator()
        self.console = Console(stderr=True)

    # -- one step ---------------------------------------------------------------------------
    def _forward_train(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split_model:
            return self.model(x)
        x = wave_augment(x, self.augment, self.gen)
        spec = self.model.frontend(x)
        if spec.dim() == 4:  # an image (log-mel, scalogram): SpecAugment masks; a waveform passes as it is
            spec = spec_augment(spec, self.augment, self.gen)
        return self.model.backbone(spec)

    def _train_epoch(self, loader, opt, sched, scaler, progress, task) -> tuple[float, float]:
        self.model.train()
        total, correct, n = 0.0, 0, 0
        for batch in loader:
            x, y = batch[0].to(self.device), batch[1].to(self.device)
            target = F.one_hot(y, self.n_classes).float()
            if self.cfg.label_smoothing:
                target = target * (1 - self.cfg.label_smoothing) + self.cfg.label_smoothing / self.n_classes
            x, target = mixup(x, target, self.augment, self.gen)  # on the model input (wave or features)
            with torch.autocast(self.device.type, enabled=self.use_amp):
                logits = self._forward_train(x)
                loss = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
                if self.regulariser is not None:
                    loss = loss + self.regulariser(self.model)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if self.cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            total += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == target.argmax(1)).sum())
            n += len(y)
            progress.advance(task)
        return total / max(1, n), correct / max(1, n)

    def _validate(self, loader) -> dict[str, float]:
        preds = predict(self.model, loader, self.device)
        logits = torch.from_numpy(preds.logits)
        out = {"valid_loss": float(F.cross_entropy(logits, torch.from_numpy(preds.labels).long())),
               "valid_acc": accuracy(preds.labels, preds.logits.argmax(1))}
        votes = track_votes(preds)
        out["valid_track_acc"] = accuracy(votes["labels"], votes["soft"])
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.run_dir / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.run_dir / "checkpoint.pt")

    def _seed_epoch(self, epoch: int, *loaders) -> None:
        base = self.cfg.seed * 100_003 + epoch
        set_seed(base)
        self.gen.manual_seed(base + 1)
        for ld in loaders:
            if ld is None:
                continue
            if getattr(ld, "generator", None) is not None:
                ld.generator.manual_seed(base + 2)
            ds_rng = getattr(ld.dataset, "rng", None)
            if isinstance(ds_rng, np.random.Generator):
                ld.dataset.rng = np.random.default_rng(base + 3)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, train_loader, valid_loader=None, resume: bool = False,
            on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
        """Train for ``cfg.epochs`` (or until early stopping); the model ends with the best weights.

        Without a validation loader every epoch counts as best (the last weights are kept).
        ``on_epoch(epoch, metrics)`` is called after each epoch (Optuna pruning raises from it).
        """
        pkg_log = logging.getLogger("training")
        handler = logging.FileHandler(self.run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler.setLevel(logging.INFO)
        old_level = pkg_log.level
        if pkg_log.getEffectiveLevel() > logging.INFO:
            pkg_log.setLevel(logging.INFO)  # the log file always gets the epoch lines
        pkg_log.addHandler(handler)
        try:
            return self._fit(train_loader, valid_loader, resume, on_epoch)
        finally:
            pkg_log.removeHandler(handler)
            pkg_log.setLevel(old_level)
            handler.close()

    def _fit(self, train_loader, valid_loader, resume, on_epoch) -> FitResult:
        cfg = self.cfg
        if len(train_loader) == 0:
            raise UsageError("no training data in this split")
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(train_loader),
                                                    pct_start=cfg.pct_start)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_amp)
        history: list[dict[str, float]] = []
        best_metric, best_epoch, bad, start, seconds = -np.inf, 0, 0, 1, 0.0
        best_state = copy.deepcopy(self.model.state_dict())
        ckpt_path = self.run_dir / "checkpoint.pt"
        if resume:
            if not ckpt_path.is_file():
                raise UsageError(f"{ckpt_path}: no checkpoint to resume from")
            ck = torch.load(ckpt_path, map_location=self.device, weights_only=False)
            self.model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            scaler.load_state_dict(ck["scaler"])
            history, best_metric, best_epoch, bad = ck["history"], ck["best_metric"], ck["best_epoch"], ck["bad_epochs"]
            best_state, seconds, start = ck["best_state"], ck["seconds"], ck["epoch"] + 1
            if ck.get("stopped"):
                start = cfg.epochs + 1
            log.info("resumed from epoch %d", ck["epoch"])
        quiet = not self.console.is_terminal
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[info]}"))
        with Progress(*columns, console=self.console, disable=quiet, transient=True) as progress:
            for epoch in range(start, cfg.epochs + 1):
                t0 = time.perf_counter()
                self._seed_epoch(epoch, train_loader, valid_loader)
                task = progress.add_task(f"epoch {epoch}/{cfg.epochs}", total=len(train_loader), info="")
                train_loss, train_acc = self._train_epoch(train_loader, opt, sched, scaler, progress, task)
                metrics = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                           "lr": sched.get_last_lr()[0]}
                if valid_loader is not None and len(valid_loader):
                    metrics.update(self._validate(valid_loader))
                    score = (metrics["valid_track_acc"], -metrics["valid_loss"])
                else:
                    score = (float(epoch), 0.0)
                metrics["seconds"] = time.perf_counter() - t0
                seconds += metrics["seconds"]
                progress.remove_task(task)
                history.append(metrics)
                improved = best_epoch == 0 or score > best_metric
                if improved:
                    best_metric, best_epoch, bad = score, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                    torch.save(best_state, self.run_dir / "best.pt")
                else:
                    bad += 1
                stopped = cfg.patience > 0 and bad >= cfg.patience
                log.info("epoch %d %s%s", epoch, " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch"),
                         " *" if improved else "")
                self._save({"model": self.model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                            "history": history, "best_metric": best_metric, "best_epoch": best_epoch,
                            "bad_epochs": bad, "best_state": best_state, "seconds": seconds, "stopped": stopped,
                            "config": asdict(cfg)})
                (self.run_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n")
                if on_epoch is not None:
                    on_epoch(epoch, metrics)
                if stopped:
                    log.info("early stop: no validation improvement for %d epochs (best epoch %d)", bad, best_epoch)
                    break
        self.model.load_state_dict(best_state)
        has_valid = any("valid_track_acc" in h for h in history)
        best = float(best_metric[0]) if has_valid else float("nan")
        return FitResult(best_epoch=best_epoch, best_metric=best, history=history, seconds=seconds)
