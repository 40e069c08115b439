"""`tag`'s model lanes: batches run side by side on one engine give the same results, in input order, as one
lane (real clips, the shipped fast model, small batches so that several runs are in flight)."""

from __future__ import annotations

import pytest

from clitools import write_clip
from streamtag.settings import TagSettings
from streamtag.tagger import find_files, tag_engine, tag_files


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("lanes")
    paths = [write_clip(d / f"{i}-{g}.wav", g, seconds, n=i % 3)
             for i, (g, seconds) in enumerate([("metal", 9.0), ("classical", 5.0), ("hiphop", 7.5),
                                               ("jazz", 4.0), ("reggae", 6.0)])]
    (d / "2b-broken.wav").write_text("not audio")
    return sorted(str(p) for p in [*paths, d / "2b-broken.wav"])


def test_two_lanes_give_the_same_results_in_input_order_as_one(clips):
    s = TagSettings(model="fast", provider="cpu", batch=3, jobs=2, hop=0.5, progress=False)
    engine = tag_engine(s)
    jobs = find_files(clips)
    runs = {lanes: list(tag_files(jobs, s, engine, lanes=lanes)) for lanes in (1, 2)}
    one, two = runs[1], runs[2]
    assert [r.path for r in one] == [r.path for r in two] == clips
    assert [r.error is not None for r in one] == [p.endswith("broken.wav") for p in clips]
    for a, b in zip(one, two):
        if a.error is not None:
            assert str(a.error) == str(b.error)
            continue
        assert a.windows == b.windows > 0 and a.genre == b.genre and a.segments == b.segments
        assert a.probs.keys() == b.probs.keys()
        assert all(abs(a.probs[k] - b.probs[k]) <= 2e-4 for k in a.probs)  # rounded to 4 decimals
    assert len({r.genre for r in one if r.error is None}) >= 3  # real verdicts, not one label for all
