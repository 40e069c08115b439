"""LogMel against a plain numpy/librosa computation of the same spectrogram on real audio."""

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from streamtag.audio import load_mono
from streamtag.modelmeta import FrontEnd
from training.frontend import LogMel, frame_count, mel_filterbank
from training.models import cnn
from training.models.mobilenet import shared_dir

CLIP = "data/gtzan-mini/jazz/jazz.00001.flac"


def kaldi_bank_reference(p: FrontEnd) -> np.ndarray:
    """Kaldi's triangular bank written from its definition (mel = 1127 ln(1 + f / 700))."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    delta = (mel(p.fmax) - mel(p.fmin)) / (p.n_mels + 1)
    bins = mel(np.arange(p.n_fft // 2) * p.sample_rate / p.n_fft)
    bank = np.zeros((p.n_mels, p.n_fft // 2 + 1))
    for m in range(p.n_mels):
        left, centre, right = (mel(p.fmin) + (m + i) * delta for i in range(3))
        up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
        bank[m, :-1] = np.clip(np.minimum(up, down), 0.0, None)
    return bank


def reference_logmel(x: np.ndarray, p: FrontEnd, bank: np.ndarray) -> np.ndarray:
    """The same spectrogram computed with numpy + librosa.stft."""
    if p.preemphasis:
        x = x[1:] - p.preemphasis * x[:-1]
    n = p.win_length if p.window == "hann_symmetric" else p.win_length + 1
    window = np.hanning(n)[: p.win_length]  # numpy's Hann is symmetric; periodic = symmetric of n + 1, cut
    spec = librosa.stft(x.astype(np.float64), n_fft=p.n_fft, hop_length=p.hop_length, win_length=p.win_length,
                        window=window, center=p.center, pad_mode=p.pad_mode)
    mel = bank @ np.abs(spec) ** 2
    return (np.log(mel + p.log_offset) + p.norm_shift) / p.norm_scale


@pytest.mark.parametrize("params", [FrontEnd(), cnn.FRONTEND], ids=["audioset-kaldi-reflect", "cnn-slaney-constant"])
def test_logmel_matches_numpy_reference_on_real_clip(params):
    x = load_mono(shared_dir() / CLIP, params.sample_rate)[: 3 * params.sample_rate]
    bank = kaldi_bank_reference(params) if params.mel_scale == "kaldi" else librosa.filters.mel(
        sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax)
    want = reference_logmel(x, params, bank)
    got = LogMel(params)(torch.from_numpy(x)[None])[0, 0].numpy()
    assert got.shape == want.shape == (params.n_mels, frame_count(params, len(x)))
    assert np.abs(got - want).max() < 2e-3
    assert np.abs(got - want).mean() < 1e-4


def test_kaldi_bank_matches_definition_and_has_empty_nyquist_column():
    p = FrontEnd()
    bank = mel_filterbank(p)
    assert bank.shape == (128, 513)
    np.testing.assert_allclose(bank, kaldi_bank_reference(p), atol=1e-6)
    assert not bank[:, -1].any()
    assert (bank.max(axis=1) > 0).all()  # every band, even the narrow low ones, touches a bin


def test_pad_mode_changes_only_the_edge_frames():
    x = torch.from_numpy(load_mono(shared_dir() / CLIP, 32000)[:32000])[None]
    reflect = LogMel(FrontEnd(pad_mode="reflect"))(x)[0, 0]
    zeros = LogMel(FrontEnd(pad_mode="constant"))(x)[0, 0]
    assert not torch.allclose(reflect[:, 0], zeros[:, 0], atol=1e-3)
    torch.testing.assert_close(reflect[:, 3:-3], zeros[:, 3:-3])


def test_window_shape_follows_params():
    sym = LogMel(FrontEnd(window="hann_symmetric")).window
    per = LogMel(FrontEnd(window="hann_periodic")).window
    assert sym[0] == sym[-1] == 0 and per[0] == 0 and per[-1] > 0


def test_bad_params_are_rejected():
    with pytest.raises(ValueError, match="mel scale"):
        LogMel(dataclasses.replace(FrontEnd(), mel_scale="bark"))
    with pytest.raises(ValueError, match="pad mode"):
        LogMel(dataclasses.replace(FrontEnd(), pad_mode="edge"))
