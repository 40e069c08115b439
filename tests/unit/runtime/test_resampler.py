"""StreamResampler: what :meth:`preview` gives before the stream emits it equals what the stream emits later
(real music, random chunk sizes, several rate pairs), or, not exact, equals it except within the filter's
reach of the newest input; RingHistory keeps the newest samples in order."""

import numpy as np
import pytest

from streamtag.audio import RingHistory, StreamResampler


@pytest.mark.parametrize("from_rate, to_rate", [(44100, 32000), (22050, 32000), (48000, 16000), (8000, 32000)])
def test_preview_equals_what_the_stream_emits_later(music, from_rate, to_rate):
    x = music(from_rate, "jazz")[3 * from_rate:6 * from_rate]
    rng = np.random.default_rng(from_rate + to_rate)
    rs = StreamResampler(from_rate, to_rate)
    out, previews, pos, chunks = [], [], 0, 0
    while pos < len(x):
        chunk = x[pos:pos + int(np.exp(rng.uniform(0, np.log(30000))))]  # 1 sample to blocks of 30000
        pos += len(chunk)
        chunks += 1
        out.append(rs.process(chunk))
        assert rs.consumed == pos and rs.emitted == sum(map(len, out))
        ready = rs.previewable()
        assert rs.preview(ready + 1) is None and rs.preview(0) is None
        if ready:
            n = int(rng.integers(1, ready + 1))
            for k in (n, ready):
                y = rs.preview(k)
                assert y is not None and len(y) == k
                previews.append((rs.emitted, y.copy()))  # a copy: the next preview may reuse its buffer
    out.append(rs.process(np.zeros(0, dtype=np.float32), last=True))
    stream = np.concatenate(out)
    assert abs(len(stream) - len(x) * to_rate / from_rate) <= 2
    assert len(previews) >= chunks  # after most chunks some output was ready ahead of the stream
    assert max(len(y) for _, y in previews) >= to_rate // 1000  # ahead of the stream by a millisecond or more
    for start, y in previews:
        np.testing.assert_allclose(y, stream[start:start + len(y)], rtol=0, atol=1e-6)


@pytest.mark.parametrize("from_rate, to_rate", [(22050, 32000), (44100, 16000)])
def test_inexact_preview_reaches_the_input_and_differs_only_within_the_filters_reach(music, from_rate, to_rate):
    x = music(from_rate, "rock")[:4 * from_rate]
    stream = StreamResampler(from_rate, to_rate).process(x, last=True)
    rs = StreamResampler(from_rate, to_rate)
    reach = int(np.ceil(rs.lookahead * to_rate / from_rate)) + 2  # output samples within the filter's reach
    block, checked = from_rate // 20, 0
    for pos in range(0, len(x) - block, block):
        rs.process(x[pos:pos + block])
        exact, ready = rs.previewable(), rs.previewable(exact=False)
        assert ready == rs.consumed * to_rate // from_rate - rs.emitted  # up to the newest input's instant
        assert ready > exact and rs.preview(ready + 1, exact=False) is None
        y = rs.preview(ready, exact=False)
        want = stream[rs.emitted:rs.emitted + ready]
        np.testing.assert_allclose(y[:ready - reach], want[:ready - reach], rtol=0, atol=1e-6)
        assert np.abs(y[-reach:] - want[-reach:]).max() > 1e-4  # the last few really are approximate
        checked += 1
    assert checked >= 70


def test_same_rate_passes_through_and_previews_nothing():
    rs = StreamResampler(32000, 32000)
    x = np.arange(100, dtype=np.float32)
    assert rs.process(x) is x
    assert rs.previewable() == 0 and rs.preview(1) is None
    assert rs.consumed == rs.emitted == 100


def test_ring_history_keeps_the_newest_samples_in_order():
    rng = np.random.default_rng(5)
    h = RingHistory(1000)
    seen = []
    for size in [10, 999, 1, 0, 1500, 333, 667, 1000, 7]:  # across the end, and chunks larger than it holds
        chunk = rng.standard_normal(size).astype(np.float32)
        h.add(chunk)
        seen.extend(chunk)
        assert h.filled == min(1000, len(seen))
        for n in {1, h.filled // 2, h.filled} - {0}:
            assert np.array_equal(h.recent(n), np.array(seen[-n:], dtype=np.float32))
