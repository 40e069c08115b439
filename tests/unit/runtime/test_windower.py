"""Windower: window count and positions for a given hop, chunked pushes, zero-padding of short streams."""

import numpy as np

from streamtag.windower import Windower


def _windows(total, chunk, window=30, hop=10, rate=10):
    w = Windower(rate, window, hop, max_push=chunk)
    x = np.arange(total, dtype=np.float32)
    out = np.zeros(window, dtype=np.float32)
    found = []
    for i in range(0, total, chunk):
        w.push(x[i:i + chunk])
        while (win := w.pull_into(out)) is not None:
            found.append((win, out.copy()))
    if (win := w.finish(out)) is not None:
        found.append((win, out.copy()))
    return found


def test_windows_are_hop_apart_and_hold_the_right_samples():
    found = _windows(total=95, chunk=7)
    assert [f[0].start for f in found] == [0, 10, 20, 30, 40, 50, 60]
    for win, data in found:
        assert win.end - win.start == 30
        assert data.tolist() == list(range(win.start, win.end))
    assert found[2][0].t_start == 2.0 and found[2][0].t_end == 5.0


def test_stream_shorter_than_a_window_is_zero_padded_to_one_window():
    found = _windows(total=12, chunk=5)
    assert len(found) == 1
    win, data = found[0]
    assert (win.start, win.end, win.t_end) == (0, 12, 1.2)
    assert data[:12].tolist() == list(range(12)) and not data[12:].any()


def test_no_padding_once_a_full_window_was_produced():
    assert len(_windows(total=35, chunk=35)) == 1


def test_tail_window_ends_at_the_end_of_the_stream():
    w = Windower(10, 30, 10, max_push=7)
    x = np.arange(95, dtype=np.float32)
    out = np.zeros(30, dtype=np.float32)
    starts = []
    for i in range(0, 95, 7):
        w.push(x[i:i + 7])
        while (win := w.pull_into(out)) is not None:
            starts.append(win.start)
    tail = w.finish(out, tail=True)
    assert starts == [0, 10, 20, 30, 40, 50, 60] and (tail.start, tail.end, tail.index) == (65, 95, 7)
    assert out.tolist() == list(range(65, 95)) and w.finish(out, tail=True) is None


def test_no_tail_window_when_the_last_window_already_reaches_the_end():
    w = Windower(10, 30, 10, max_push=50)
    w.push(np.arange(50, dtype=np.float32))
    out = np.zeros(30, dtype=np.float32)
    while w.pull_into(out) is not None:
        pass
    assert w.finish(out, tail=True) is None
