"""Split logic on the real shared data: no track (or artist group) in two folds, fault-filtered lists."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from streamtag.errors import UsageError
from training.data import discover
from training.splits import csv_split, filtered_split, group_kfold, make_splits, stratified_kfold

SHARED = Path(os.environ.get("STREAMTAG_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
MINI = SHARED / "data" / "gtzan-mini"
EXTRA = SHARED / "data" / "extra-4q"
SPLITS = SHARED / "data" / "gtzan-splits"


@pytest.fixture(scope="module")
def both():
    return discover([MINI, EXTRA])


def assert_partition(splits, n):
    """Every track is tested exactly once; valid, test and train are disjoint in every split."""
    tested = [i for s in splits for i in s.test]
    assert sorted(tested) == list(range(n))
    for s in splits:
        tr, va, te = set(s.train), set(s.valid), set(s.test)
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert va and te and tr
        assert len(tr) + len(va) + len(te) == n


@pytest.mark.parametrize("k", [3, 5])
def test_group_kfold_never_splits_an_artist(both, k):
    splits = group_kfold(both, k, seed=1)
    assert_partition(splits, len(both))
    fold_of_group: dict[str, int] = {}
    for f, s in enumerate(splits):
        for i in s.test:
            assert fold_of_group.setdefault(both[i].group, f) == f, both[i].group
    # the validation fold of split i is a test fold of another split, never its own
    for s in splits:
        assert {both[i].group for i in s.valid}.isdisjoint({both[i].group for i in s.train})
        assert {both[i].group for i in s.test}.isdisjoint({both[i].group for i in s.train})


def test_groups_are_namespaced_by_source(both, tmp_path):
    # two sources whose tracks.csv use the same artist id "1" must not form one group
    roots = []
    for name, genres in (("a", ("blues", "metal")), ("b", ("blues", "metal"))):
        root = tmp_path / name
        rows = []
        for g in genres:
            (root / g).mkdir(parents=True)
            for j in range(2):
                src = MINI / g / f"{g}.0000{j}.flac"
                (root / g / src.name).symlink_to(src)
                rows.append({"path": f"{g}/{src.name}", "genre": g, "artist_group": "1"})
        with (root / "tracks.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, ["path", "genre", "artist_group"])
            w.writeheader()
            w.writerows(rows)
        roots.append(root)
    tracks = discover(roots)
    assert {t.group for t in tracks} == {"a:1", "b:1"}
    # with two groups only, a 3-fold group split is impossible -> clear error, not a silent merge
    with pytest.raises(UsageError, match="artist groups"):
        group_kfold(tracks, 3)
    # the real sources: every group id carries its source
    assert all(t.group.startswith(t.source + ":") for t in both)
    assert len({t.group for t in both}) == len({t.group for t in both if t.source == "gtzan-mini"}) + len(
        {t.group for t in both if t.source == "extra-4q"})


def test_stratified_kfold_partitions_tracks_and_balances_genres(both):
    splits = stratified_kfold(both, 5, seed=0)
    assert_partition(splits, len(both))
    for s in splits:  # each genre with >= 5 tracks appears in every test fold
        assert {both[i].genre for i in s.test} == {t.genre for t in both}


def test_splits_are_seeded(both):
    assert group_kfold(both, 5, seed=3) == group_kfold(both, 5, seed=3)
    assert group_kfold(both, 5, seed=3) != group_kfold(both, 5, seed=4)


def test_filtered_split_matches_tracks_csv_and_tolerates_missing(both):
    s = filtered_split(both, SPLITS)
    with (MINI / "tracks.csv").open() as fh:
        want = {r["path"].rsplit(".", 1)[0]: r["fault_filtered_split"] for r in csv.DictReader(fh)}
    got = {both[i].key: part for part in ("train", "valid", "test") for i in getattr(s, part)}
    # listed .wav names matched the .flac files; only gtzan-mini tracks can be in the lists
    assert all(both[i].source == "gtzan-mini" for i in s.train + s.valid + s.test)
    on_disk = {t.key for t in both if t.source == "gtzan-mini"}
    for key, part in want.items():  # tracks.csv records each track's place in the standard split
        if key in on_disk:  # (it names jazz.00003/09, which the folder lacks)
            assert got.get(key, "excluded") == part
    assert got["jazz/jazz.00011"] == got["jazz/jazz.00012"] == "train"  # on disk, not in tracks.csv
    assert len(got) == sum(v != "excluded" for k, v in want.items() if k in on_disk) + 2
    assert s.train and s.test  # 900+ listed tracks are absent, handled without error


def test_filtered_split_with_no_listed_track_present_is_an_error():
    with pytest.raises(UsageError, match="none of the tracks"):
        filtered_split(discover([EXTRA]), SPLITS)


def test_filtered_split_missing_list(both, tmp_path):
    with pytest.raises(UsageError, match="split list not found"):
        filtered_split(both, tmp_path)


def test_csv_split_and_csv_folds(both, tmp_path):
    mini = [i for i, t in enumerate(both) if t.source == "gtzan-mini"]
    f = tmp_path / "s.csv"
    f.write_text("path,split\n" + "".join(
        f"{both[i].key}.wav,{('train', 'valid', 'test')[n % 3]}\n" for n, i in enumerate(mini)))
    (s,) = csv_split(both, f)
    assert len(s.train) + len(s.valid) + len(s.test) == len(mini)
    g = tmp_path / "folds.csv"
    g.write_text("path,fold\n" + "".join(f"{both[i].key},{n % 4}\n" for n, i in enumerate(mini)))
    folds = csv_split(both, g)
    assert len(folds) == 4
    assert sorted(i for s in folds for i in s.test) == sorted(mini)
    assert all(set(s.train) <= set(mini) for s in folds)


@pytest.mark.parametrize("kind,folds,msg", [("bogus", 5, "unknown --split"), ("group", 2, "at least 3"),
                                            ("stratified", 1000, "more than"), ("filtered", 5, "needs --split-dir")])
def test_bad_split_requests(both, kind, folds, msg):
    with pytest.raises(UsageError, match=msg):
        make_splits(both, kind, folds)
