"""Augmentations change what they should, keep shapes, and are reproducible from a generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from streamtag.audio import load_mono
from training.augment import AugmentConfig, mixup, pitch_tempo_variants, spec_augment, wave_augment

SHARED = Path(os.environ.get("STREAMTAG_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))


@pytest.fixture(scope="module")
def waves() -> torch.Tensor:
    x = load_mono(SHARED / "data" / "gtzan-mini" / "rock" / "rock.00003.flac", 16000)
    return torch.from_numpy(np.stack([x[i * 16000:(i + 3) * 16000] for i in range(4)]).copy())


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_gain_stays_within_bounds(waves):
    cfg = AugmentConfig(gain_db=6.0, noise_prob=0.0)
    out = wave_augment(waves, cfg, gen())
    ratio_db = 20 * torch.log10(out.abs().amax(1) / waves.abs().amax(1))
    assert (ratio_db.abs() <= 6.0 + 1e-4).all() and (ratio_db.abs() > 1e-3).any()


def test_noise_respects_snr(waves):
    cfg = AugmentConfig(gain_db=0.0, noise_prob=1.0, noise_snr_db_min=20.0, noise_snr_db_max=20.0)
    out = wave_augment(waves, cfg, gen())
    snr = 10 * torch.log10(waves.pow(2).mean(1) / (out - waves).pow(2).mean(1))
    assert torch.allclose(snr, torch.full_like(snr, 20.0), atol=0.5)


def test_spec_augment_masks_bands_and_frames():
    spec = torch.randn(8, 1, 64, 188)
    cfg = AugmentConfig(time_masks=2, time_mask_frac=0.2, freq_masks=2, freq_mask_frac=0.2)
    out = spec_augment(spec, cfg, gen(1))
    assert out.shape == spec.shape
    changed = out != spec
    assert changed.any()
    # masks are whole mel bands or whole frames: a changed cell's row or column is changed throughout
    for b in range(8):
        c = changed[b, 0]
        rows, cols = c.all(dim=1), c.all(dim=0)
        assert (c == (rows[:, None] | cols[None, :])).all()
        assert rows.sum() <= 2 * int(64 * 0.2) and cols.sum() <= 2 * int(188 * 0.2)
    assert torch.equal(out, spec_augment(spec, cfg, gen(1)))  # reproducible
    assert torch.equal(spec_augment(spec, AugmentConfig.off(), gen(1)), spec)


def test_mixup_mixes_inputs_and_targets():
    x = torch.arange(6, dtype=torch.float32)[:, None].repeat(1, 5)
    y = torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    cfg = AugmentConfig(mixup_alpha=0.4, mixup_prob=1.0)
    xm, ym = mixup(x, y, cfg, gen(2))
    assert torch.allclose(ym.sum(1), torch.ones(6))
    assert (ym.max(1).values >= 0.5 - 1e-6).all()  # the original example dominates
    assert not torch.equal(xm, x)
    xo, yo = mixup(x, y, AugmentConfig.off(), gen(2))
    assert xo is x and yo is y


def test_waveform_off_keeps_only_mixup():
    cfg = AugmentConfig().waveform_off()
    assert cfg.gain_db == cfg.noise_prob == cfg.time_masks == cfg.freq_masks == 0
    assert cfg.mixup_alpha > 0


def test_pitch_and_tempo_variants(waves):
    x = waves[0].numpy()
    up, slow = pitch_tempo_variants(x, 16000, semitones=(2.0,), rates=(0.8,))
    assert up.shape == x.shape and not np.allclose(up, x)
    assert abs(len(slow) - len(x) / 0.8) < 16000 * 0.05
