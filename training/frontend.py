"""Front ends in torch: waveform -> the image (or sequence) a backbone reads.

- :class:`LogMel`, built from :class:`streamtag.modelmeta.FrontEnd` (every log-mel model);
- :class:`MorletScalogram`, a continuous-wavelet (Morlet) scalogram from :class:`Scalogram`;
- :class:`Waveform`, the raw samples as one channel (sample-level models).

The front end is exported inside every ONNX graph, so its parameters are the model's: the
runtime only feeds raw mono samples at the model's sample rate. Each has ``output_shape(n)``
(its output's shape after the channel axis for ``n`` samples) and ``describe()`` (a JSON-ready
description, written into the exported metadata).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import librosa
import numpy as np
import torch
import torch.nn.functional as F
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

    def output_shape(self, n_samples: int) -> tuple[int, int]:
        """``(n_mels, frames)``."""
        return self.params.n_mels, frame_count(self.params, n_samples)

    def describe(self) -> dict:
        """``{"kind": "log-mel", **FrontEnd}``."""
        return {"kind": "log-mel", **asdict(self.params)}


@dataclass(frozen=True)
class Scalogram:
    """Morlet scalogram parameters (fixed by training, like :class:`~streamtag.modelmeta.FrontEnd`).

    Scales: ``bins_per_octave`` Morlet wavelets per octave over ``octaves`` octaves, centre
    frequencies ``fmax * 2 ** (-k / bins_per_octave)``; each wavelet's Gaussian bandwidth is
    ``fc / omega0`` (Morlet's omega0 = 6: about 0.39 fc wide at half height, constant Q).
    """

    sample_rate: int = 16000
    fmax: float = 7000.0
    """Centre frequency of the highest scale (Hz)."""
    octaves: int = 7
    bins_per_octave: int = 8
    omega0: float = 6.0
    """Centre frequency over Gaussian bandwidth (``fc / sigma_f``)."""
    hop_length: int = 320
    """Frame hop in samples at ``sample_rate``; a multiple of ``stride * 2 ** (octaves - 2)``."""
    lowpass_taps: int = 63
    """Length of the half-band filter applied before each halving of the rate."""
    stride: int = 2
    """Each row's magnitude is sampled every ``stride`` samples (of its octave's rate) before the frame average."""
    log_offset: float = 1e-4
    norm_shift: float = 5.0
    norm_scale: float = 1.5
    """Output: ``(log(magnitude + log_offset) + norm_shift) / norm_scale`` (about zero mean, unit variance on music)."""

    @property
    def n_scales(self) -> int:
        """Rows of the scalogram."""
        return self.octaves * self.bins_per_octave

    def centre_frequencies(self) -> np.ndarray:
        """Centre frequency of each row, lowest first (Hz)."""
        k = np.arange(self.n_scales)[::-1]
        return self.fmax * 2.0 ** (-k / self.bins_per_octave)


def morlet_kernels(p: Scalogram, octave: int = 0) -> np.ndarray:
    """``(2 * bins_per_octave, taps)``: real then imaginary parts of one octave's wavelets at ``sample_rate``.

    ``octave`` 0 is the top octave, 1 the one below. Each wavelet is a complex exponential at its
    centre frequency under a Gaussian of time width ``omega0 / (2 pi fc)``, cut at 4 widths and
    scaled to unit L1 norm of the envelope (a sinusoid at the centre gives half its amplitude).
    """
    fc = p.centre_frequencies()[p.n_scales - (octave + 1) * p.bins_per_octave:][: p.bins_per_octave]
    fc = fc / p.sample_rate  # cycles per sample
    sigma_t = p.omega0 / (2 * np.pi * fc)  # samples
    half = int(math.ceil(4 * sigma_t.max()))
    t = np.arange(-half, half + 1, dtype=np.float64)
    env = np.exp(-0.5 * (t[None] / sigma_t[:, None]) ** 2)
    env /= env.sum(axis=1, keepdims=True)
    phase = 2 * np.pi * fc[:, None] * t[None]
    return np.concatenate([env * np.cos(phase), env * np.sin(phase)]).astype(np.float32)


def halfband_lowpass(taps: int) -> np.ndarray:
    """Hann-windowed sinc low-pass at a quarter of the sample rate (before keeping every other sample)."""
    if taps % 2 == 0:
        raise ValueError("lowpass_taps must be odd")
    n = np.arange(taps) - (taps - 1) / 2
    h = 0.5 * np.sinc(0.5 * n) * np.hanning(taps + 2)[1:-1]
    return (h / h.sum()).astype(np.float32)


class MorletScalogram(nn.Module):
    """``waveform (B, T)`` -> normalised log Morlet scalogram ``(B, 1, n_scales, T // hop_length)``.

    The continuous wavelet transform computed octave by octave with two sets of Morlet kernels:
    the top octave's at the full rate, and the next octave's, which serve every lower octave too
    (a wavelet one octave lower is the same kernel at half the rate). Before each halving the
    signal is low-passed at a quarter of its rate; the second set reaches only to ~0.3 of its
    rate, so nothing it sees is aliased. Each row's magnitude, taken every ``stride`` samples, is
    averaged over frames of ``hop_length`` samples. Only Conv, Pad and pooling ops: it exports into the ONNX graph as is.
    """

    def __init__(self, params: Scalogram):
        super().__init__()
        if params.octaves < 2 or params.hop_length % (params.stride * 2 ** (params.octaves - 2)):
            raise ValueError("need at least 2 octaves and hop_length a multiple of stride * 2 ** (octaves - 2)")
        if not 0 < params.fmax < params.sample_rate / 2:
            raise ValueError("fmax must lie below the Nyquist frequency")
        self.params = params
        for name, octave in (("top", 0), ("lower", 1)):
            k = torch.from_numpy(morlet_kernels(params, octave))[:, None]
            self.register_buffer(f"kernels_{name}", k, persistent=False)
        self.register_buffer("lowpass", torch.from_numpy(halfband_lowpass(params.lowpass_taps))[None, None],
                             persistent=False)

    def _magnitude(self, x: torch.Tensor, kernels: torch.Tensor, hop: int, frames: int) -> torch.Tensor:
        pad, b, stride = kernels.shape[-1] // 2, self.params.bins_per_octave, self.params.stride
        y = F.conv1d(F.pad(x, (pad, pad)), kernels, stride=stride)  # (B, 2b, n / stride): real, imaginary parts
        mag = torch.sqrt(y[:, :b].square() + y[:, b:].square() + 1e-12)
        hop //= stride
        return F.avg_pool1d(mag[..., : frames * hop], hop)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        p = self.params
        x, frames, pad = wave[:, None], wave.shape[-1] // p.hop_length, self.lowpass.shape[-1] // 2
        rows = [self._magnitude(x, self.kernels_top, p.hop_length, frames)]
        for octave in range(1, p.octaves):
            if octave > 1:
                x = F.conv1d(F.pad(x, (pad, pad)), self.lowpass, stride=2)
            rows.append(self._magnitude(x, self.kernels_lower, p.hop_length >> (octave - 1), frames))
        scal = torch.cat(rows[::-1], dim=1)  # lowest octave first
        return ((torch.log(scal + p.log_offset) + p.norm_shift) / p.norm_scale).unsqueeze(1)

    def output_shape(self, n_samples: int) -> tuple[int, int]:
        """``(n_scales, frames)``."""
        return self.params.n_scales, n_samples // self.params.hop_length

    def describe(self) -> dict:
        """``{"kind": "morlet-scalogram", **Scalogram}``."""
        return {"kind": "morlet-scalogram", **asdict(self.params)}


class Waveform(nn.Module):
    """``waveform (B, T)`` -> ``(B, 1, T)``: the samples themselves, for sample-level models."""

    def __init__(self, sample_rate: int):
        super().__init__()
        self.sample_rate = sample_rate

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave[:, None]

    def output_shape(self, n_samples: int) -> tuple[int]:
        """``(n_samples,)``."""
        return (n_samples,)

    def describe(self) -> dict:
        """``{"kind": "waveform", "sample_rate": ...}``."""
        return {"kind": "waveform", "sample_rate": self.sample_rate}
