"""Log-mel front end in torch, built from :class:`streamtag.modelmeta.FrontEnd`.

The same module is exported inside every ONNX graph, so its parameters are the model's: the
runtime only feeds raw mono samples at ``FrontEnd.sample_rate``.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from streamtag.audio import resample
from streamtag.modelmeta import FrontEnd


def analysis_window(p: FrontEnd) -> torch.Tensor:
    """Hann window of ``win_length`` samples, symmetric or periodic as ``p.window`` says."""
    if p.window not in ("hann_symmetric", "hann_periodic"):
        raise ValueError(f"unknown window {p.window!r}")
    return torch.hann_window(p.win_length, periodic=p.window == "hann_periodic", dtype=torch.float32)


def resampler_power_response(p: FrontEnd) -> np.ndarray:
    """``|H(f)|^2`` at each FFT bin of the soxr resampler from ``p.sample_rate`` to ``p.resampled_to``.

    Measured on the resampler itself (one steady sine per bin, output/input RMS), so it is exactly
    the filter :func:`streamtag.audio.resample` applies; 0 at and above the lower rate's Nyquist.
    """
    n_bins, rate, low = p.n_fft // 2 + 1, p.sample_rate, p.resampled_to
    seconds, edge = 0.5, int(0.05 * low)  # steady part: drop the filter's start-up and tail
    t = np.arange(int(seconds * rate)) / rate
    gain = np.zeros(n_bins)
    for k in range(n_bins):
        f = k * rate / p.n_fft
        if f >= low / 2:
            break
        y = resample(np.cos(2 * np.pi * f * t).astype(np.float32), rate, low)[edge:-edge]
        ref = np.cos(2 * np.pi * f * np.arange(len(y) + 2 * edge) / low)[edge:-edge]
        gain[k] = np.mean(y.astype(np.float64) ** 2) / np.mean(ref ** 2)
    return gain


def mel_filterbank(p: FrontEnd) -> np.ndarray:
    """Mel filter bank ``(n_mels, n_fft // 2 + 1)`` for power spectra.

    With ``p.resampled_to`` the bank also carries :func:`resampler_power_response`.

    ``slaney``/``htk``: librosa's filters (slaney area normalisation). ``kaldi``: Kaldi's bank as
    EfficientAT uses it -- unnormalised triangles linear in mel (``1127 ln(1 + f/700)``; librosa's
    HTK mel is proportional, so the triangles are the same) over the first ``n_fft // 2`` bins,
    with a zero column for the Nyquist bin.
    """
    bank = _triangles(p)
    return bank * resampler_power_response(p)[None, :] if p.resampled_to else bank


def _triangles(p: FrontEnd) -> np.ndarray:
    if p.mel_scale in ("slaney", "htk"):
        return librosa.filters.mel(sr=p.sample_rate, n_fft=p.n_fft, n_mels=p.n_mels,
                                   fmin=p.fmin, fmax=p.fmax, htk=p.mel_scale == "htk")
    if p.mel_scale != "kaldi":
        raise ValueError(f"unknown mel scale {p.mel_scale!r}")
    bin_mel = librosa.hz_to_mel(np.arange(p.n_fft // 2) * p.sample_rate / p.n_fft, htk=True)
    edges = np.linspace(librosa.hz_to_mel(p.fmin, htk=True), librosa.hz_to_mel(p.fmax, htk=True), p.n_mels + 2)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_mel - left) / (centre - left)
    falling = (right - bin_mel) / (right - centre)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(bank, ((0, 0), (0, 1)))


def frame_count(p: FrontEnd, n_samples: int) -> int:
    """Number of spectrogram frames :class:`LogMel` makes from ``n_samples`` samples."""
    n = n_samples - (1 if p.preemphasis else 0)
    if p.center:
        return 1 + n // p.hop_length
    return 1 + (n - p.n_fft) // p.hop_length


class LogMel(nn.Module):
    """``waveform (B, T)`` -> normalised log-mel ``(B, 1, n_mels, frames)``.

    Pre-emphasis is the valid convolution ``x[n] - k x[n-1]`` (one sample shorter, as EfficientAT
    computes it), then a centred STFT with ``pad_mode``, power spectrum, mel bank,
    ``log(mel + log_offset)`` and ``(x + norm_shift) / norm_scale``.
    """

    def __init__(self, params: FrontEnd):
        super().__init__()
        if params.pad_mode not in ("reflect", "constant"):
            raise ValueError(f"unknown pad mode {params.pad_mode!r}")
        self.params = params
        self.register_buffer("window", analysis_window(params), persistent=False)
        self.register_buffer("mel", torch.tensor(mel_filterbank(params), dtype=torch.float32), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        p = self.params
        x = wave
        if p.preemphasis:
            x = x[:, 1:] - p.preemphasis * x[:, :-1]
        spec = torch.stft(x, p.n_fft, hop_length=p.hop_length, win_length=p.win_length, window=self.window,
                          center=p.center, pad_mode=p.pad_mode, normalized=False, onesided=True,
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel, power)
        logmel = torch.log(mel + p.log_offset)
        return ((logmel + p.norm_shift) / p.norm_scale).unsqueeze(1)
