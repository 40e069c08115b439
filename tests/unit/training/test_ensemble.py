"""Combining members' window predictions: soft = mean probability, hard = majority of argmaxes; checks."""

from pathlib import Path

import numpy as np
import pytest

from streamtag.errors import UsageError
from training.data import Track
from training.ensemble import combine
from training.evaluate import Predictions, SavedPredictions, softmax

LABELS = ("blues", "jazz", "rock")
TRACKS = [Track(Path(f"{g}/{g}.0.wav"), g, "src", f"src:{g}", f"{g}/{g}.0") for g in LABELS]


def member(probs, starts=(0.0, 3.0, 0.0, 0.0), labels=LABELS) -> SavedPredictions:
    """Four windows: two of track 0 (blues), one of track 1 (jazz), one of track 2 (rock)."""
    p = np.asarray(probs, dtype=np.float64)
    return SavedPredictions(Predictions(np.log(p).astype(np.float32), np.array([0, 0, 1, 2]), np.array([0, 0, 1, 2])),
                            TRACKS, labels, np.asarray(starts))


A = member([[.6, .3, .1], [.35, .45, .2], [.1, .5, .4], [.3, .3, .4]])
B = member([[.2, .7, .1], [.9, .05, .05], [.1, .3, .6], [.1, .2, .7]])
C = member([[.5, .1, .4], [.4, .45, .15], [.2, .7, .1], [.2, .2, .6]])


def test_soft_vote_is_the_mean_of_the_members_probabilities():
    got = softmax(combine([A, B], "soft").logits)
    np.testing.assert_allclose(got, (np.exp(A.preds.logits) + np.exp(B.preds.logits)) / 2, rtol=1e-5)
    assert got.argmax(1).tolist() == [1, 0, 2, 2]
    assert softmax(combine([A, B, C], "soft").logits)[1].argmax() == 0  # B's confident blues outweighs two jazz


def test_hard_vote_is_the_majority_of_the_members_argmaxes_with_the_mean_breaking_ties():
    hard = softmax(combine([A, B, C], "hard").logits)
    np.testing.assert_allclose(hard[1], [1 / 3, 2 / 3, 0], atol=2e-3)  # jazz, jazz, blues: 2 of 3 votes
    assert hard.argmax(1).tolist() == [0, 1, 1, 2]
    tie = softmax(combine([A, B], "hard").logits)  # window 0: blues (A) against jazz (B), one vote each
    assert tie[0].argmax() == 1  # the mean probability decides: jazz 0.5 > blues 0.4
    np.testing.assert_array_equal(combine([A, B], "hard").labels, A.preds.labels)


def test_members_must_share_labels_tracks_and_windows():
    with pytest.raises(UsageError, match="windows differ"):
        combine([A, member(np.exp(B.preds.logits), starts=(0.0, 1.5, 0.0, 0.0))], "soft", ["a", "b"])
    with pytest.raises(UsageError, match="labels"):
        combine([A, member(np.exp(B.preds.logits), labels=("blues", "jazz", "pop"))], "soft")
    shifted = SavedPredictions(B.preds, TRACKS[::-1], LABELS, B.window_start)
    with pytest.raises(UsageError, match="other tracks"):
        combine([A, shifted], "hard")
    with pytest.raises(UsageError, match="unknown vote"):
        combine([A, B], "median")
