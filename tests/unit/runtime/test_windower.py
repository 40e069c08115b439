"""Windower: window count and positions for a given hop, chunked pushes, zero-padding of short streams,
hops longer than the window, the end-aligned last window that covers a stream's tail, and windows cut early
from samples known before they are pushed."""

import numpy as np
import pytest

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
    assert [f[0].start for f in found] == [0, 10, 20, 30, 40, 50, 60, 65]   # the last one ends at the end
    for win, data in found:
        assert win.end - win.start == 30
        assert data.tolist() == list(range(win.start, win.end))
    assert found[2][0].t_start == 2.0 and found[2][0].t_end == 5.0
    assert found[-1][0].end == 95 and [f[0].index for f in found] == list(range(8))


def test_no_extra_window_when_the_last_window_already_ends_at_the_end():
    found = _windows(total=90, chunk=7)
    assert found[-1][0].end == 90 and len(found) == 7


def test_stream_shorter_than_a_window_is_zero_padded_to_one_window():
    found = _windows(total=12, chunk=5)
    assert len(found) == 1
    win, data = found[0]
    assert (win.start, win.end, win.t_end) == (0, 12, 1.2)
    assert data[:12].tolist() == list(range(12)) and not data[12:].any()


def test_no_padding_once_a_full_window_was_produced():
    found = _windows(total=35, chunk=35)
    assert [(w.start, w.end) for w, _ in found] == [(0, 30), (5, 35)]     # the tail: real samples, no zeros
    assert found[1][1].tolist() == list(range(5, 35))


@pytest.mark.parametrize("chunk", [1, 7, 64, 500])
def test_hop_longer_than_the_window_skips_the_gaps(chunk):
    found = _windows(total=500, chunk=chunk, window=30, hop=70)
    assert [w.start for w, _ in found] == [0, 70, 140, 210, 280, 350, 420, 470]
    for win, data in found:
        assert data.tolist() == list(range(win.start, win.end))


def test_stream_ending_inside_a_gap_still_gets_its_last_samples_analysed():
    found = _windows(total=85, chunk=9, window=30, hop=70)
    assert [(w.start, w.end) for w, _ in found] == [(0, 30), (55, 85)]


def test_every_sample_is_covered_for_any_length_hop_and_chunk():
    for total in (1, 29, 30, 31, 59, 61, 200):
        for hop in (1, 10, 30, 45, 100):
            for chunk in (1, 13, 200):
                found = _windows(total=total, chunk=chunk, window=30, hop=hop)
                assert found[-1][0].end == total
                if hop <= 30:          # overlapping or touching windows: no gap anywhere
                    covered = set()
                    for w, _ in found:
                        covered.update(range(w.start, w.end))
                    assert covered == set(range(total))


@pytest.mark.parametrize("chunk, hop", [(7, 10), (3, 50), (23, 10)])
def test_windows_cut_early_from_a_known_tail_are_the_ones_cut_later(chunk, hop):
    """``pull_into(out, tail)``: the samples about to be pushed complete the window now; the same windows come
    out, each as soon as its missing samples are known, none twice."""
    total, window, early = 300, 30, 4  # up to ``early`` samples are known before they are pushed
    x = np.arange(total, dtype=np.float32)
    w = Windower(10, window, hop, max_push=chunk)
    out = np.zeros(window, dtype=np.float32)
    found, cut_early = [], 0
    for i in range(0, total, chunk):
        w.push(x[i:i + chunk])
        pushed = min(total, i + chunk)
        while (win := w.pull_into(out)) is not None:
            found.append((win, out.copy()))
        need = w.missing()
        if 0 < need <= min(early, total - pushed):
            assert w.pull_into(out, x[pushed:pushed + need - 1]) is None  # one sample short: no window
            win = w.pull_into(out, x[pushed:pushed + early])
            assert win is not None and win.end == pushed + need
            found.append((win, out.copy()))
            cut_early += 1
    if (win := w.finish(out)) is not None:
        found.append((win, out.copy()))
    assert cut_early > 0
    assert [(f[0].start, f[0].end) for f in found] == [(f[0].start, f[0].end) for f in _windows(total, chunk, hop=hop)]
    for win, data in found:
        assert data.tolist() == list(range(win.start, win.end))
