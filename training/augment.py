"""Training-time augmentation: waveform gain and noise, mixup, SpecAugment masks, offline pitch/tempo.

Random crops (time shift) happen in :class:`training.data.WindowDataset`. SpecAugment runs on
the log-mel between ``model.frontend`` and ``model.backbone``; everything here is a no-op at
evaluation time because only the trainer's training step calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch


@dataclass
class AugmentConfig:
    """Augmentation strengths; a zero disables that augmentation."""

    gain_db: float = 6.0
    """Random gain, uniform in ``±gain_db`` dB per example."""
    noise_prob: float = 0.3
    """Share of examples that get white noise."""
    noise_snr_db_min: float = 10.0
    """Lowest signal-to-noise ratio of that noise (dB)."""
    noise_snr_db_max: float = 40.0
    """Highest signal-to-noise ratio (dB)."""
    mixup_alpha: float = 0.2
    """Beta(alpha, alpha) mixing weight for mixup (0 = off)."""
    mixup_prob: float = 0.5
    """Share of batches mixed."""
    time_masks: int = 2
    """SpecAugment time masks per example."""
    time_mask_frac: float = 0.1
    """Longest time mask as a share of the frames."""
    freq_masks: int = 2
    """SpecAugment frequency masks per example."""
    freq_mask_frac: float = 0.15
    """Widest frequency mask as a share of the mel bands."""

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all (e.g. a head trained on fixed embeddings)."""
        return cls(**{f.name: 0 for f in fields(cls)})

    def waveform_off(self) -> "AugmentConfig":
        """Same, minus what needs waveform or spectrogram input (gain, noise, masks): for feature inputs."""
        return replace(self, gain_db=0.0, noise_prob=0.0, time_masks=0, freq_masks=0)


def wave_augment(wave: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random gain and additive white noise on a ``(B, T)`` batch."""
    b = wave.shape[0]
    if cfg.gain_db > 0:
        db = (torch.rand(b, 1, generator=gen) * 2 - 1) * cfg.gain_db
        wave = wave * (10 ** (db / 20)).to(wave)
    if cfg.noise_prob > 0:
        snr = cfg.noise_snr_db_min + torch.rand(b, 1, generator=gen) * (cfg.noise_snr_db_max - cfg.noise_snr_db_min)
        power = wave.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
        scale = torch.sqrt(power / (10 ** (snr.to(wave) / 10)))
        on = (torch.rand(b, 1, generator=gen) < cfg.noise_prob).to(wave)
        wave = wave + on * scale * torch.randn(wave.shape, generator=gen).to(wave)
    return wave


def spec_augment(spec: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Time and frequency masks on a ``(B, C, mels, frames)`` batch, filled with each example's mean."""
    b, _, m, f = spec.shape
    if not (cfg.time_masks or cfg.freq_masks):
        return spec
    keep = torch.ones(b, 1, m, f, dtype=torch.bool)
    for count, frac, size, axis in ((cfg.freq_masks, cfg.freq_mask_frac, m, 2), (cfg.time_masks, cfg.time_mask_frac, f, 3)):
        width_max = int(size * frac)
        if count <= 0 or width_max < 1:
            continue
        pos = torch.arange(size)
        for _ in range(count):
            width = torch.randint(0, width_max + 1, (b,), generator=gen)
            start = (torch.rand(b, generator=gen) * (size - width + 1)).long()
            band = (pos[None] >= start[:, None]) & (pos[None] < (start + width)[:, None])  # (b, size)
            band = band[:, None, :, None] if axis == 2 else band[:, None, None, :]
            keep &= ~band
    keep = keep.to(spec.device)
    fill = spec.mean(dim=(1, 2, 3), keepdim=True)
    return torch.where(keep, spec, fill)


def mixup(x: torch.Tensor, y: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix a batch with a shuffled copy of itself; ``y`` is one-hot/soft ``(B, C)``. Returns (x, y)."""
    if cfg.mixup_alpha <= 0 or torch.rand(1, generator=gen).item() >= cfg.mixup_prob:
        return x, y
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))).beta(cfg.mixup_alpha, cfg.mixup_alpha))
    lam = max(lam, 1 - lam)  # keep the original example dominant
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y + (1 - lam) * y[perm]


def pitch_tempo_variants(wave: np.ndarray, sample_rate: int, semitones: tuple[float, ...] = (),
                         rates: tuple[float, ...] = ()) -> list[np.ndarray]:
    """Offline variants of a clip via librosa: one per pitch shift (semitones) and per time stretch rate."""
    import librosa  # heavy import, only when offline variants are asked for

    out = [librosa.effects.pitch_shift(np.asarray(wave, dtype=np.float32), sr=sample_rate, n_steps=s) for s in semitones]
    out += [librosa.effects.time_stretch(np.asarray(wave, dtype=np.float32), rate=r) for r in rates]
    return [v.astype(np.float32, copy=False) for v in out]
