"""Smoothing per-window probabilities into a stable genre: ema / soft / hard vote plus hysteresis."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .settings import VOTE_MODES

SILENCE = "silence"
"""Genre reported for windows whose RMS is below the silence threshold."""
SPEECH = "speech"
"""Genre reported for windows that are mostly talk (models with a ``speech`` output)."""
UNKNOWN = "unknown"
"""Genre reported while the smoothed confidence is below ``--min-confidence`` (when the user set one)."""


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of ``x`` in dB relative to full scale (-inf-safe: floor at -200)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Mean window probabilities of a file, calibrated: ``p ** (1 / temperature)`` renormalised per row.

    The model's ``track_temperature`` (fitted on validation folds) makes a file's confidence mean what it
    says; 1 leaves the probabilities as they are.
    """
    p = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    if temperature == 1.0:
        return p
    z = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Verdict:
    """The vote's answer after one window."""

    genre: str
    """Smoothed genre (after hysteresis), or ``"silence"``, ``"speech"`` or ``"unknown"``."""
    confidence: float
    """Smoothed probability of ``genre`` (vote share for ``hard``; 1.0 for silence); for ``unknown``, that
    of the leading genre, which is below the threshold."""
    raw_genre: str
    """This window's own argmax (or ``"silence"``)."""
    changed: bool
    """True when ``genre`` differs from the previous verdict's (also for the first verdict)."""
    previous: str | None
    """The genre before this window (None for the first window)."""


class Vote:
    """Running vote over windows.

    ``ema``: exponential moving average of probabilities (weight ``alpha`` on the newest);
    ``soft``: mean probabilities of the last ``window`` windows; ``hard``: majority of the last
    ``window`` argmaxes. Hysteresis: the reported genre moves to a new leader only after it led
    for ``confirm`` consecutive windows. Silence resets the vote, so the first window after it
    sets the genre at once. Talk (:meth:`speech`) is reported after ``confirm`` speech windows in a
    row and then resets the vote too; fewer are skipped (the genre holds, the vote is untouched).
    With ``min_confidence`` above 0, a leader whose smoothed probability is below it counts as
    ``unknown``, under the same hysteresis as any genre.
    """

    def __init__(self, labels: tuple[str, ...], mode: str = "ema", window: int = 5,
                 alpha: float = 0.4, confirm: int = 2, min_confidence: float = 0.0):
        self.labels = labels
        self.window, self.alpha, self.confirm = window, alpha, confirm
        self.min_confidence = min_confidence
        self.genre: str | None = None
        self._confidence = 0.0
        self._speech_run = 0
        self.set_mode(mode)

    def reset(self) -> None:
        """Forget the history (the reported genre is kept until the next verdict)."""
        self._ema: np.ndarray | None = None
        self._recent: deque[np.ndarray] = deque(maxlen=self.window)
        self._leader: str | None = None
        self._streak = 0
        self._fresh = True

    def set_mode(self, mode: str) -> None:
        """Switch ``ema|soft|hard`` and start the vote afresh."""
        if mode not in VOTE_MODES:
            raise ValueError(f"unknown vote mode {mode!r}")
        self.mode = mode
        self.reset()

    def _smoothed(self, probs: np.ndarray) -> np.ndarray:
        if self.mode == "ema":
            self._ema = probs.copy() if self._ema is None else self.alpha * probs + (1 - self.alpha) * self._ema
            return self._ema
        if self.mode == "soft":
            self._recent.append(probs)
            return np.mean(self._recent, axis=0)
        self._recent.append(np.eye(len(self.labels), dtype=np.float32)[int(np.argmax(probs))])
        return np.mean(self._recent, axis=0)

    def update(self, probs: np.ndarray) -> Verdict:
        """Feed one window's probabilities; returns the current verdict."""
        smooth = self._smoothed(np.asarray(probs, dtype=np.float32))
        top = int(np.argmax(smooth))
        lead = self.labels[top] if smooth[top] >= self.min_confidence else UNKNOWN
        if self._fresh or self.genre in (None, SILENCE, SPEECH) or lead == self.genre:
            new, self._streak = lead, 0
        else:
            self._streak = self._streak + 1 if lead == self._leader else 1
            new = lead if self._streak >= self.confirm else self.genre
            if new == lead:
                self._streak = 0
        self._leader = lead
        self._fresh = False
        self._speech_run = 0
        confidence = smooth[top] if new == UNKNOWN else smooth[self.labels.index(new)]
        return self._verdict(new, float(confidence), self.labels[int(np.argmax(probs))])

    def silence(self) -> Verdict:
        """Record a silent window: genre ``"silence"`` and a vote reset."""
        self._speech_run = 0
        return self._other(SILENCE, 1.0)

    def speech(self, probability: float) -> Verdict:
        """Record a mostly-talk window (its speech ``probability``): ``"speech"`` once ``confirm`` came in a
        row (at once after silence, speech or at the start), with a vote reset; before that the genre holds."""
        self._speech_run += 1
        if self._speech_run >= self.confirm or self.genre in (None, SILENCE, SPEECH):
            return self._other(SPEECH, probability)
        return self._verdict(self.genre, self._confidence, SPEECH)

    def _other(self, state: str, confidence: float) -> Verdict:
        self.reset()
        return self._verdict(state, confidence, state)

    def _verdict(self, genre: str, confidence: float, raw: str) -> Verdict:
        previous, self.genre, self._confidence = self.genre, genre, confidence
        return Verdict(genre, confidence, raw, previous != genre, previous)
