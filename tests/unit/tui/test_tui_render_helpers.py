"""Pure TUI helpers: number formatting, bars, genre marks, timeline bucketing and axis."""

import math

import pytest

from streamtag.clock import fmt_clock, fmt_stream_time
from streamtag.tui.bars import bar, level_fraction
from streamtag.tui.cpu import CpuMeter
from streamtag.tui.format import ellipsize_left, fit_source, fmt_dbfs, fmt_ms, fmt_percent, short_provider
from streamtag.tui.health import HealthPanel
from streamtag.tui.history import GenreHistory, axis, buckets, change_columns, span_for, window
from streamtag.tui.marks import genre_colours, genre_letters
from streamtag.tui.now_playing import spaced

GTZAN = "blues classical country disco hiphop jazz metal pop reggae rock".split()


@pytest.mark.parametrize("value, text", [
    (-23.44, "-23.4 dBFS"), (0.0, "  0.0 dBFS"), (-3.05, " -3.0 dBFS"),
    (-math.inf, "-inf dBFS"), (-200.0, "-inf dBFS"), (None, "  -- dBFS"), (math.nan, "  -- dBFS"),
])
def test_fmt_dbfs(value, text):
    assert fmt_dbfs(value) == text


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.9, "0:59"), (61, "1:01"), (3600, "1:00:00"),
                                           (3725, "1:02:05"), (-4, "0:00")])
def test_fmt_clock(seconds, text):
    assert fmt_clock(seconds) == text


@pytest.mark.parametrize("seconds, text", [(0, "0:00.0"), (16.0, "0:16.0"), (16.96, "0:17.0"), (75.25, "1:15.2"),
                                           (3725.5, "1:02:05.5")])
def test_fmt_stream_time(seconds, text):
    assert fmt_stream_time(seconds) == text


def test_fmt_percent_ms_provider():
    assert fmt_percent(0.8214) == " 82.1%"
    assert fmt_percent(1.0) == "100.0%"
    assert fmt_percent(None) == "   --%"
    assert fmt_ms(3.14159) == "3.1 ms" and fmt_ms(123.4) == "123 ms" and fmt_ms(None) == "-- ms"
    assert short_provider("CUDAExecutionProvider") == "CUDA"
    assert short_provider("CPUExecutionProvider") == "CPU"


def test_fit_source_keeps_the_file_name():
    desc = "file /a/long/folder/classical.00000.flac (22050 Hz, 1 ch, 30.0 s)"
    assert fit_source(desc, 200) == desc
    assert fit_source(desc, 51) == "file /a/long/folder/classical.00000.flac (22050 Hz)"
    assert fit_source(desc, 33) == "…/classical.00000.flac (22050 Hz)"
    assert fit_source(desc, 21) == "…classical.00000.flac"
    assert len(fit_source(desc, 12)) == 12
    assert ellipsize_left("abc", 3) == "abc" and ellipsize_left("abcd", 1) == "a"


def test_bar_widths_and_eighths():
    assert bar(0.0, 8) == " " * 8
    assert bar(1.0, 8) == "█" * 8
    assert bar(0.5, 8) == "████    "
    assert bar(0.5, 1) == "▌" and bar(1 / 16, 2) == "▏ "  # 4 eighths; 1 eighth, padded
    assert bar(2.0, 3) == "███" and bar(-1.0, 3) == "   " and bar(math.nan, 2) == "  "
    assert all(len(bar(k / 97, 13)) == 13 for k in range(98))
    assert bar(0.3, 0) == ""


def test_level_fraction():
    assert level_fraction(0.0) == 1.0
    assert level_fraction(-30.0) == pytest.approx(0.5)
    assert level_fraction(-60.0) == 0.0 and level_fraction(-math.inf) == 0.0 and level_fraction(None) == 0.0
    assert level_fraction(3.0) == 1.0


def test_genre_letters_are_unique_and_readable():
    letters = genre_letters(GTZAN)
    assert letters["blues"] == "B" and letters["classical"] == "C" and letters["country"] == "O"
    assert letters["metal"] == "M" and letters["reggae"] == "R" and letters["rock"] == "K"
    assert (letters["silence"], letters["speech"], letters["unknown"]) == ("~", "*", "?")
    assert genre_letters(["silence", "salsa"]) == {"silence": "~", "speech": "*", "unknown": "?", "salsa": "S"}
    assert genre_colours(["silence"])["silence"] == genre_colours([])["silence"]
    assert len(set(letters.values())) == len(letters)
    real = [m for m in genre_letters([f"genre{i}" for i in range(30)]).values() if m != "#"]
    assert len(real) == len(set(real)) == 3 + 4 + 10  # silence, speech, unknown, G E N R, then the ten digits
    colours = genre_colours(GTZAN)
    assert len({colours[g] for g in GTZAN}) == 10 and {"silence", "speech", "unknown"} <= set(colours)


def test_spaced_genre_name():
    assert spaced("metal", 20) == "M E T A L"
    assert spaced("classical", 10) == "CLASSICAL"


def _history():
    h = GenreHistory()
    h.observe(3.0, "classical")
    h.observe(11.0, "classical")
    h.change(12.0, "metal", "classical")
    h.observe(30.0, "metal")
    return h


def test_history_starts_at_zero_and_lists_the_first_genre_with_the_changes():
    h = _history()
    assert [(c.t, c.genre) for c in h.changes] == [(0.0, "classical"), (12.0, "metal")]
    h.change(13.0, "metal", "metal")  # not a change
    assert len(h.changes) == 2
    assert [(c.t, c.previous, c.genre) for c in h.recent(5)] == [(12.0, "classical", "metal"),
                                                                  (0.0, None, "classical")]
    first = GenreHistory()
    first.change(0.0, "jazz", None)  # first verdict arrives as a change event
    assert [(c.t, c.previous, c.genre) for c in first.recent(3)] == [(0.0, None, "jazz")]


def test_buckets_and_change_columns():
    h = _history()
    t0, t1 = window(h.now, span_for(h.now, 300.0))
    assert (t0, t1) == (0.0, 30.0)
    cols = buckets(h, t0, t1, 30)
    assert cols[:12] == ["classical"] * 12 and cols[12:] == ["metal"] * 18
    assert change_columns(h, t0, t1, 30) == {12}
    # a wider span leaves the future empty
    cols = buckets(h, 0.0, 60.0, 6)
    assert cols == ["classical", "metal", "metal", None, None, None]  # midpoints 5, 15, 25 s
    assert buckets(h, 0.0, 0.0, 5) == [] and buckets(h, 0.0, 1.0, 0) == []


def test_span_grows_then_slides():
    assert span_for(0.0, 300.0) == 30.0
    assert span_for(31.0, 300.0) == 60.0
    assert span_for(250.0, 300.0) == 300.0
    assert span_for(5000.0, 300.0) == 300.0
    assert window(20.0, 30.0) == (0.0, 30.0)
    assert window(400.0, 300.0) == (100.0, 400.0)


def test_axis_labels_fit_and_span_the_range():
    text = axis(0.0, 60.0, 48)
    assert len(text) == 48
    assert text.startswith("0:00") and text.endswith("1:00")
    assert "0:20" in text and "0:40" in text
    assert axis(0.0, 30.0, 4) == "0:00"  # no room for more
    assert axis(0, 30, 0) == ""


def test_cpu_meter_percent_of_one_core():
    ticks = iter([(0.0, 0.0), (0.5, 1.0), (0.5, 2.0), (2.5, 3.0)])
    now = [None]

    def cpu():
        now[0] = next(ticks)
        return now[0][0]

    meter = CpuMeter(cpu_clock=cpu, wall_clock=lambda: now[0][1])
    assert meter.sample() == pytest.approx(50.0)
    assert meter.sample() == pytest.approx(0.0)
    assert meter.sample() == pytest.approx(200.0)


def test_health_says_zmq_off_without_a_sent_count_when_not_publishing():
    h = HealthPanel()
    h.status = {"published": 282}           # console lines count as published events
    assert h.render().plain.splitlines()[-1] == "zmq off"
    h.address = "tcp://127.0.0.1:5556"
    assert h.render().plain.splitlines()[-1] == "zmq tcp://127.0.0.1:5556  sent 282"
