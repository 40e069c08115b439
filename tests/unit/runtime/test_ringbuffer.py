"""RingBuffer: FIFO order across wrap-around, drop counting, in-place channel mixing, write times."""

import time

import numpy as np
import pytest

from streamtag.audio import to_mono
from streamtag.ringbuffer import RingBuffer


def test_fifo_across_wraparound_keeps_order():
    rb = RingBuffer(10)
    out = np.zeros(10, dtype=np.float32)
    seq = np.arange(100, dtype=np.float32)
    got = []
    for i in range(0, 100, 7):
        assert rb.write(seq[i:i + 7]) == len(seq[i:i + 7])
        n = rb.read_into(out[:4])
        got.extend(out[:n])
        n = rb.read_into(out)
        got.extend(out[:n])
    assert np.array_equal(np.array(got), seq)
    assert rb.dropped == 0


def test_full_buffer_drops_and_counts_the_excess():
    rb = RingBuffer(8)
    assert rb.write(np.ones(5, dtype=np.float32)) == 5
    assert rb.write(np.full(6, 2, dtype=np.float32)) == 3
    assert rb.dropped == 3 and rb.readable() == 8 and rb.free() == 0
    out = np.zeros(8, dtype=np.float32)
    rb.read_into(out)
    assert out.tolist() == [1] * 5 + [2] * 3


def test_write_mixed_averages_channels_like_to_mono():
    rb = RingBuffer(16)
    rb.write(np.zeros(13, dtype=np.float32))
    rb.skip(13)  # next write wraps around the end
    frames = np.random.default_rng(0).standard_normal((9, 3)).astype(np.float32)
    assert rb.write_mixed(frames) == 9
    out = np.zeros(9, dtype=np.float32)
    rb.read_into(out)
    np.testing.assert_allclose(out, to_mono(frames), rtol=1e-6)


def test_peek_does_not_consume_and_skip_does():
    rb = RingBuffer(6)
    rb.write(np.arange(6, dtype=np.float32))
    a = np.zeros(4, dtype=np.float32)
    rb.peek_into(a)
    rb.skip(2)
    b = np.zeros(4, dtype=np.float32)
    rb.peek_into(b)
    assert a.tolist() == [0, 1, 2, 3] and b.tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError):
        rb.skip(5)


def test_write_all_waits_for_room_and_honours_stop():
    rb = RingBuffer(4)
    assert rb.write_all(np.ones(4, dtype=np.float32), stop=lambda: False)
    assert not rb.write_all(np.ones(3, dtype=np.float32), stop=lambda: True)
    assert rb.dropped == 0


def test_write_time_finds_the_write_that_stored_a_sample():
    rb = RingBuffer(100)
    rb.write(np.zeros(10, dtype=np.float32))
    t_mid = time.monotonic()
    time.sleep(0.01)
    rb.write(np.zeros(10, dtype=np.float32))
    assert rb.write_time(5) < t_mid < rb.write_time(15)
    assert rb.write_time(25) is None


def test_peek_at_reads_stored_samples_behind_the_read_position():
    ring = RingBuffer(8)
    ring.write(np.arange(6, dtype=np.float32))
    ring.skip(5)
    ring.write(np.arange(6, 13, dtype=np.float32))   # wraps; positions 5..12 stored
    out = np.zeros(4, dtype=np.float32)
    ring.peek_at(7, out)
    assert out.tolist() == [7, 8, 9, 10]
    with pytest.raises(ValueError):
        ring.peek_at(4, out)                          # overwritten
    with pytest.raises(ValueError):
        ring.peek_at(10, out)                         # not written yet
