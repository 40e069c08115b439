"""Segment log rows from events (SQLite, CSV, JSONL), outages, airtime clipping, time parsing."""

import json
import sqlite3

import pytest

from streamtag import events
from streamtag.errors import UsageError
from streamtag.seglog import SegmentLog, airtime, parse_time, read_rows

T0 = 1_800_000_000.0


def _genre(stream, i, genre, conf=0.8, title=None):
    e = events.genre_event(stream=stream, seq=i, t_start=float(i), t_end=i + 3.0, genre=genre, confidence=conf,
                           raw_genre=genre, probs={}, latency_ms=0.0, model="m", title=title)
    e["wall"] = T0 + i + 3.0
    return e


def _outage(stream, state, wall, t):
    e = events.outage_event(stream=stream, t=t, state=state, outages=1, error="gone")
    e["wall"] = wall
    return e


def _feed(log):
    for i, g in enumerate("aaabb"):
        log.publish("streamtag.genre.s", _genre("s", i, g, conf=0.5 + 0.1 * i, title="Show"))
    log.publish("streamtag.outage.s", _outage("s", "reconnecting", T0 + 8.5, 7.0))
    log.publish("streamtag.outage.s", _outage("s", "connected", T0 + 12.0, 7.0))
    back = _genre("s", 5, "b")
    back["wall"] = T0 + 14.0
    log.publish("streamtag.genre.s", back)
    log.publish("streamtag.genre.t", _genre("t", 0, "c"))


@pytest.mark.parametrize("suffix", [".db", ".csv", ".jsonl"])
def test_rows_tile_the_stream_with_outages_in_every_format(tmp_path, suffix):
    log = SegmentLog(tmp_path / f"log{suffix}")
    _feed(log)
    log.close()
    rows = read_rows(tmp_path / f"log{suffix}")
    s = [(r["genre"], r["start_wall"] - T0, r["end_wall"] - T0) for r in rows if r["station"] == "s"]
    assert s == [("a", 0.0, 5.0), ("b", 5.0, 8.5), ("outage", 8.5, 12.0), ("b", 12.0, 14.0)]
    first = next(r for r in rows if r["station"] == "s")
    assert float(first["confidence"]) == pytest.approx(0.6) and int(first["windows"]) == 3
    assert first["title"] == "Show" and first["start"] == "2027-01-15T08:00:00.000Z"
    assert {r["state"] for r in rows} == {"closed"}
    table = airtime(rows, since=T0 + 4.0, until=T0 + 10.0)
    assert table["s"] == pytest.approx({"a": 1.0, "b": 3.5, "outage": 1.5}) and "t" not in table


def test_sqlite_keeps_the_open_segment_and_recovers_it(tmp_path):
    path = tmp_path / "log.db"
    log = SegmentLog(path)
    _feed(log)
    status = events.status_event(stream="s", uptime_s=1, dropped_samples=0, overflows=0, clipped_samples=0,
                                 latency_p50_ms=1, latency_p99_ms=1, windows=6, windows_per_s=1, provider="cpu",
                                 model="m", published=0, final=False)
    more = _genre("s", 6, "b")
    more["wall"] = T0 + 15.0
    log.publish("streamtag.genre.s", more)
    log.publish("streamtag.status.s", status)              # refreshes the open row's end
    rows = sqlite3.connect(path).execute("SELECT genre, state, end_wall, windows FROM segments WHERE station='s'"
                                         " ORDER BY id").fetchall()
    assert rows[-1] == ("b", "open", T0 + 15.0, 2)
    again = SegmentLog(path)                                  # a restart after a kill: `log` never closed
    again.publish("streamtag.genre.s", _genre("s", 0, "a"))
    assert again.recovered == 1
    states = [r["state"] for r in read_rows(path) if r["station"] == "s"]
    assert states == ["closed", "closed", "closed", "recovered", "open"]
    again.close()


def test_unreadable_logs_and_times_are_usage_errors(tmp_path):
    (tmp_path / "x.jsonl").write_text("{not json\n")
    with pytest.raises(UsageError, match="unreadable segment log"):
        read_rows(tmp_path / "x.jsonl")
    with pytest.raises(UsageError, match="no such segment log"):
        read_rows(tmp_path / "none.db")
    assert parse_time("2027-01-15T08:00:00Z") == T0 == parse_time("2027-01-15T08:00") == parse_time(str(T0))
    assert parse_time("2027-01-15T09:00+01:00") == T0
    with pytest.raises(UsageError, match="ISO 8601"):
        parse_time("yesterday")
    json.dumps(parse_time("2027-01-15"))
