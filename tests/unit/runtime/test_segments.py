"""Segments tile the stream and save as JSON or CSV."""

import csv
import json

import pytest

from streamtag.errors import UsageError
from streamtag.segments import Segments


def test_segments_tile_the_stream_and_merge_neighbours(tmp_path):
    s = Segments()
    starts = [s.add(t_end, genre) for t_end, genre in [(3, "rock"), (4, "rock"), (5, "metal"), (6, "metal"), (7, "rock")]]
    assert starts == [0.0, 0.0, 4, 4, 6]                    # where each window's genre segment starts
    assert s.items == [{"start": 0.0, "end": 4, "genre": "rock"}, {"start": 4, "end": 6, "genre": "metal"},
                       {"start": 6, "end": 7, "genre": "rock"}]
    assert json.loads(s.save(tmp_path / "seg.json").read_text()) == s.items
    rows = list(csv.DictReader(s.save(tmp_path / "seg.csv").open()))
    assert [r["genre"] for r in rows] == ["rock", "metal", "rock"] and rows[1]["start"] == "4"
    with pytest.raises(UsageError, match=r"\.json, \.csv, \.txt"):
        s.save(tmp_path / "seg.wav")
