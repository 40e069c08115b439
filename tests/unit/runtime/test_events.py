"""Event builders match the shipped JSON Schema; the schema rejects malformed events."""

import jsonschema
import pytest

from streamtag import events

PROBS = {"metal": 0.9, "rock": 0.1}


def _genre():
    return events.genre_event(stream="s", seq=3, t_start=1.0, t_end=4.0, genre="metal", confidence=0.9,
                              raw_genre="metal", probs=PROBS, latency_ms=12.5, model="m")


def _check(topic, event):
    schema = events.schema()
    jsonschema.validate(event, schema)
    jsonschema.validate(event, {"$ref": f"#/$defs/{topic}", "$defs": schema["$defs"]})


def test_every_builder_validates_against_its_topic():
    _check(events.GENRE, _genre())
    _check(events.CHANGE, events.change_event(_genre(), None, at=0.0))
    _check(events.STATUS, events.status_event(
        stream="s", uptime_s=1.0, dropped_samples=0, overflows=0, clipped_samples=0, latency_p50_ms=None,
        latency_p99_ms=None, windows=0, windows_per_s=0.0, provider="cpu", model="m", published=0, final=True))
    _check(events.LEVEL, events.level_event(stream="s", t=0.1, rms_dbfs=-20.0, peak_dbfs=-3.0, clipping=False,
                                            silent=False))
    for state, extra in (("reconnecting", {"attempt": 1, "retry_in_s": 1.1}), ("connected", {"duration_s": 3.2}),
                         ("down", {})):
        _check(events.OUTAGE, events.outage_event(stream="s", t=5.0, state=state, outages=1, error="HTTP 404", **extra))
    radio = events.genre_event(stream="s", seq=0, t_start=0.0, t_end=3.0, genre="speech", confidence=0.8,
                               raw_genre="speech", probs=PROBS, latency_ms=1.0, model="m",
                               detected={"speech": 0.8}, title="Artist - Song")
    assert radio["speech"] == 0.8 and radio["title"] == "Artist - Song"
    _check(events.GENRE, radio)
    assert "title" not in _genre() and "speech" not in _genre()


def test_station_topics():
    assert events.topic(events.GENRE, "jazz-fm") == "streamtag.genre.jazz-fm"
    assert events.topic(events.GENRE) == events.GENRE
    assert events.base_topic("streamtag.change.jazz-fm") == events.CHANGE == events.base_topic(events.CHANGE)


@pytest.mark.parametrize("mutate", [
    lambda e: e.pop("latency_ms"),
    lambda e: e.update(v=2),
    lambda e: e.update(confidence=1.5),
    lambda e: e.update(seq=-1),
    lambda e: e.update(extra="x"),
    lambda e: e["probs"].update(jazz="high"),
])
def test_schema_rejects_malformed_genre_events(mutate):
    e = _genre()
    mutate(e)
    with pytest.raises(jsonschema.ValidationError):
        _check(events.GENRE, e)


def test_wire_format_round_trip():
    frame = events.encode(events.GENRE, _genre())
    assert frame.startswith("streamtag.genre {")
    assert events.decode(frame) == (events.GENRE, _genre() | {"wall": events.decode(frame)[1]["wall"]})


def test_encode_refuses_nan_instead_of_writing_invalid_json():
    e = _genre()
    e["confidence"] = float("nan")
    with pytest.raises(ValueError):
        events.encode(events.GENRE, e)


@pytest.mark.parametrize("frame, reason", [
    (b"\xff\xfe {}", "UTF-8"), ("nospace", "topic"), (" {}", "topic"), ("t\x07 {}", "topic"),
    ("t [1, 2]", "not an object"), ("t {", "bad JSON"), ('t {"a": NaN}', "NaN"), ('t {"a": 1e999}', "range"),
    ("t " + "[" * 100000, "bad JSON"), ('t {"a": ' + "9" * 5000 + "}", "bad JSON"),
])
def test_decode_rejects_every_malformed_frame_with_a_reason(frame, reason):
    with pytest.raises(events.BadFrame, match=reason):
        events.decode(frame)
