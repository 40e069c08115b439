"""RingBuffer: FIFO order across wrap-around, drop counting, in-place channel mixing, write times, the
consumer's wake-up at a sample count and the producer's wait for room."""

import threading
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


def test_the_write_that_reaches_the_wake_count_calls_on_data_once():
    calls = []
    rb = RingBuffer(1000, on_data=lambda: calls.append(rb.written))
    rb.write(np.zeros(5, dtype=np.float32))
    assert calls == [5]  # a new buffer wakes the consumer on its first write
    assert rb.wake_at(100) is False
    rb.write(np.zeros(60, dtype=np.float32))
    assert calls == [5]
    rb.write_mixed(np.zeros((60, 2), dtype=np.float32))
    assert calls == [5, 125]
    rb.write(np.zeros(60, dtype=np.float32))
    assert calls == [5, 125]  # once per wake_at, not once per write
    assert rb.wake_at(150) is True and rb.wake_at(185) is True  # already there: no call, now or later
    rb.write(np.zeros(10, dtype=np.float32))
    assert calls == [5, 125]
    assert rb.wake_at(196) is False
    rb.write(np.zeros(1, dtype=np.float32))
    assert calls == [5, 125, 196]


def _writer(rb: RingBuffer, x: np.ndarray, stop) -> tuple[threading.Thread, list]:
    result = []
    t = threading.Thread(target=lambda: result.append(rb.write_all(x, stop, timeout=30)))
    t.start()
    return t, result


def test_write_all_waiting_for_room_wakes_when_the_consumer_reads():
    rb = RingBuffer(8)
    x = np.arange(40, dtype=np.float32)
    t0 = time.monotonic()
    t, result = _writer(rb, x, stop=lambda: False)
    got, out, turn = [], np.zeros(5, dtype=np.float32), 0
    while len(got) < len(x) and time.monotonic() - t0 < 20:
        n = min(rb.readable(), len(out))
        if not n:
            time.sleep(0.001)
            continue
        turn += 1
        if turn % 2:
            rb.read_into(out[:n])
        else:  # peek, then skip: skipping frees room too
            rb.peek_into(out[:n])
            rb.skip(n)
        got.extend(out[:n])
    t.join(timeout=5)
    assert result == [True] and time.monotonic() - t0 < 10  # never waited out its 30-s timeout
    assert np.array_equal(np.array(got), x) and rb.dropped == 0


def test_write_all_waiting_for_room_stops_when_woken():
    rb = RingBuffer(4)
    rb.write(np.zeros(4, dtype=np.float32))
    stopping = threading.Event()
    t0 = time.monotonic()
    t, result = _writer(rb, np.ones(3, dtype=np.float32), stop=stopping.is_set)
    time.sleep(0.1)
    assert t.is_alive() and result == []  # waiting for room
    stopping.set()
    rb.wake_writer()
    t.join(timeout=5)
    assert result == [False] and time.monotonic() - t0 < 5
    assert rb.written == 4 and rb.dropped == 0
