"""Front ends against plain numpy/librosa computations on real audio: the log-mel and the Morlet scalogram."""

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from streamtag.audio import load_mono
from streamtag.modelmeta import FrontEnd
from training.frontend import LogMel, MorletScalogram, Scalogram, Waveform, frame_count, mel_filterbank
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


def reference_scalogram(x: np.ndarray, p: Scalogram) -> np.ndarray:
    """The CWT from its definition: every Morlet wavelet at the full rate, by FFT, magnitude averaged per frame."""
    spectrum, freqs = np.fft.fft(x.astype(np.float64)), np.fft.fftfreq(len(x), 1 / p.sample_rate)
    frames = len(x) // p.hop_length
    rows = []
    for fc in p.centre_frequencies():
        response = np.exp(-0.5 * ((freqs - fc) / (fc / p.omega0)) ** 2)  # analytic: positive frequencies only
        mag = np.abs(np.fft.ifft(spectrum * response))[: frames * p.hop_length]
        rows.append(mag.reshape(frames, p.hop_length).mean(axis=1))
    return (np.log(np.array(rows) + p.log_offset) + p.norm_shift) / p.norm_scale


def test_octave_by_octave_scalogram_matches_the_full_rate_wavelet_transform_on_a_real_clip():
    p = Scalogram()
    x = load_mono(shared_dir() / CLIP, p.sample_rate)[5 * p.sample_rate: 8 * p.sample_rate]
    got = MorletScalogram(p)(torch.from_numpy(x)[None])[0, 0].numpy()
    want = reference_scalogram(x, p)
    assert got.shape == want.shape == (56, 150) == MorletScalogram(p).output_shape(len(x))
    inner = np.abs(got - want)[:, 4:-4]  # the reference wraps around at the edges, the convolution pads zeros
    assert inner.mean() < 0.015
    # every other sample of the magnitude is averaged (stride 2): the lowest octave's few samples per
    # frame make its frame means noisier; the upper four octaves agree closely
    assert inner[:24].max() < 0.3 and inner[24:].max() < 0.05
    assert 0.5 < want.std() < 2  # normalised to about unit scale on music


def test_scalogram_rows_are_ordered_by_frequency_across_octaves():
    p = Scalogram()
    t = np.arange(3 * p.sample_rate) / p.sample_rate
    centres = p.centre_frequencies()
    assert np.all(np.diff(centres) > 0) and centres[-1] == p.fmax
    scal = MorletScalogram(p)
    for row in (3, 20, 37, 50):  # one row in each of four octaves, computed at four different rates
        tone = torch.from_numpy(0.5 * np.sin(2 * np.pi * centres[row] * t).astype(np.float32))[None]
        assert int(scal(tone)[0, 0].mean(dim=1).argmax()) == row


def test_waveform_front_end_passes_samples_as_one_channel():
    wave = torch.randn(3, 48000)
    front = Waveform(16000)
    assert front(wave).shape == (3, 1, 48000) and torch.equal(front(wave)[:, 0], wave)
    assert front.output_shape(48000) == (48000,) and front.describe() == {"kind": "waveform", "sample_rate": 16000}
    assert LogMel(cnn.FRONTEND).describe()["kind"] == "log-mel"
    assert MorletScalogram(Scalogram()).describe()["octaves"] == 7


def test_bad_scalogram_params_are_rejected():
    with pytest.raises(ValueError, match="hop_length"):
        MorletScalogram(Scalogram(hop_length=100))
    with pytest.raises(ValueError, match="Nyquist"):
        MorletScalogram(Scalogram(fmax=9000.0))
