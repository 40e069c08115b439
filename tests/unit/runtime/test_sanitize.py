"""Sample sanitising: NaN/inf -> 0, beyond full scale -> clipped to +-1, counted; no numpy warnings."""

import warnings

import numpy as np

from streamtag.audio import sanitize, to_mono


def test_clean_samples_are_left_alone_and_not_counted():
    x = np.linspace(-1, 1, 101, dtype=np.float32)
    y = x.copy()
    assert sanitize(y) == 0 and np.array_equal(x, y)


def test_non_finite_become_zero_and_hot_samples_are_clipped_and_counted():
    x = np.array([0.5, np.nan, np.inf, -np.inf, 3e38, -1.5, 1.0, -1.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no RuntimeWarning may leak to stderr
        assert sanitize(x) == 5
    assert x.tolist() == [0.5, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0]


def test_mixing_garbage_beyond_float32_range_is_quiet():
    frames = np.array([[3e38, 3e38], [-3e38, -3e38], [0.25, 0.75]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mono = to_mono(frames)
        assert sanitize(mono) == 2
    assert mono.tolist() == [0.0, 0.0, 0.5]
