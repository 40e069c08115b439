"""Frozen-feature transfer: aligned cached features, heads, calibration, selection on validation folds only."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from training.backbones import build_all
from training.data import Track, discover
from training.features import FeatureConfig, load_features, window_plan
from training.heads import GenreHead, HeadConfig, fit_temperature, thin_classes
from training.models.mobilenet import shared_dir
from training.selection import select
from training.splits import Split, group_kfold
from training.transfer import (GENRES, TransferConfig, artists_by_genre, config_from_dict, config_name, fit_head,
                               reliability)

FEATURES = FeatureConfig(views=1, hop_seconds=6.0)
QUICK = dataclasses.replace(HeadConfig().train, epochs=4, batch_size=8, lr=1e-2)


@pytest.fixture(scope="module")
def tracks():
    found = discover([shared_dir() / "data/gtzan-mini"], GENRES)
    return [t for t in found if t.key in ("metal/metal.00000", "metal/metal.00001", "classical/classical.00000",
                                          "classical/classical.00001")]


@pytest.fixture(scope="module")
def backbones():
    return {b.name: b for b in build_all(["audioset", "musicnn-msd"])}


@pytest.fixture(scope="module")
def feats(backbones, tracks, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    f = load_features(list(backbones.values()), tracks, GENRES, FEATURES, cache)
    again = load_features(list(backbones.values()), tracks, GENRES, FEATURES, cache)  # read back from the cache
    for name in backbones:
        np.testing.assert_array_equal(again.x[name], f.x[name])
    assert len(list(cache.glob("features-*.npy"))) == 2
    return f


def test_features_hold_aligned_clean_and_augmented_windows(feats, tracks):
    n_clean = int((feats.view == 0).sum())
    assert feats.x["audioset"].shape == (2 * n_clean, 384) and feats.x["musicnn-msd"].shape == (2 * n_clean, 200)
    assert feats.matrix(["audioset", "musicnn-msd"]).shape == (2 * n_clean, 584)
    clean, augmented = feats.x["musicnn-msd"][feats.view == 0], feats.x["musicnn-msd"][feats.view == 1]
    assert not np.allclose(clean, augmented, atol=1e-3)
    # the window plan is the clip's and the view's, never the backbone's: the same on every call
    lengths = [30 * 32000] * len(tracks)
    first, second = window_plan(tracks, lengths, FEATURES), window_plan(tracks, lengths, FEATURES)
    assert all(np.array_equal(a, b) for x, y in zip(first, second) for a, b in zip(x, y))
    assert not np.array_equal(first[0][0], first[0][1])  # augmented starts are jittered


def test_residual_head_starts_at_the_audioset_answer(backbones, feats):
    x = feats.select(["audioset", "musicnn-msd"], range(4)).tensors[0]
    head = GenreHead(HeadConfig(kind="residual"), [backbones["audioset"], backbones["musicnn-msd"]], GENRES, x).eval()
    with torch.no_grad():
        zero_shot = backbones["audioset"].zero_shot(x[:, :384])
        torch.testing.assert_close(head(x), zero_shot)
        assert float(head.penalty()) == 0.0


@pytest.mark.parametrize("kind,names", [("residual", ("audioset", "musicnn-msd")), ("mlp", ("audioset", "musicnn-msd")),
                                        ("late", ("audioset", "musicnn-msd")), ("audioset", ("audioset",)),
                                        ("mlp", ("musicnn-msd",))])
def test_every_head_kind_trains(backbones, tracks, feats, tmp_path, kind, names):
    cfg = TransferConfig(head=HeadConfig(kind=kind, backbones=names, hidden=16 if kind == "mlp" else 0, train=QUICK),
                         features=FEATURES)
    head, result = fit_head(backbones, tracks, feats, Split("t", (0, 1, 2, 3), (0, 2), ()), cfg, tmp_path)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    x = feats.select(names, range(4)).tensors[0]
    with torch.no_grad():
        assert head(x).shape == (len(x), len(GENRES)) and torch.isfinite(head(x)).all()


def test_protected_rows_give_the_untrained_audioset_logits(backbones, tracks, feats, tmp_path):
    # metal has 2 artists in these tracks, classical 1: with protect_below 2 the classical row is kept
    cfg = TransferConfig(head=HeadConfig(kind="residual", protect_below=2, train=QUICK), features=FEATURES)
    head, _ = fit_head(backbones, tracks, feats, Split("t", (0, 1, 2, 3), (), ()), cfg, tmp_path)
    assert head.protected == tuple(g for g in GENRES if g != "metal")
    x = feats.select(["audioset", "musicnn-msd"], range(4)).tensors[0]
    with torch.no_grad():
        out, zero_shot = head(x), backbones["audioset"].zero_shot(x[:, :384])
    classical, metal = GENRES.index("classical"), GENRES.index("metal")
    torch.testing.assert_close(out[:, classical], zero_shot[:, classical])
    assert not torch.allclose(out[:, metal], zero_shot[:, metal])


def test_thin_classes_counts_distinct_artists_in_the_training_tracks():
    def track(genre, group):
        return Track(Path(f"{genre}.wav"), genre, "src", f"src:{group}", f"{genre}/x")
    tracks = [track("rock", "a"), track("rock", "a"), track("pop", "b"), track("pop", "c"), track("jazz", "d")]
    labels = ("jazz", "pop", "rock", "disco")
    assert thin_classes(artists_by_genre(tracks, range(5)), labels, 2) == ["jazz", "rock", "disco"]
    assert thin_classes(artists_by_genre(tracks, [0, 2, 3]), labels, 1) == ["jazz", "disco"]
    assert thin_classes(artists_by_genre(tracks, range(5)), labels, 0) == []


def test_temperature_undoes_overconfidence_and_lowers_ece():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 4000)
    calibrated = rng.normal(0, 1, (4000, 4))
    calibrated[np.arange(4000), labels] += 1.5  # a calibrated model by construction: sample labels from softmax
    p = np.exp(calibrated) / np.exp(calibrated).sum(1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    t = fit_temperature(3 * calibrated, labels)
    assert 2.6 < t < 3.4
    over = np.exp(3 * calibrated) / np.exp(3 * calibrated).sum(1, keepdims=True)
    raw = reliability(over.max(1), over.argmax(1) == labels)
    fixed = reliability(p.max(1), p.argmax(1) == labels)
    assert fixed["ece"] < 0.03 < raw["ece"] and sum(b["n"] for b in raw["bins"]) == 4000


def _votes(correct_tracks, n=10):
    return {"track": list(range(n)), "label": [0] * n, "soft": [0 if i < correct_tracks else 1 for i in range(n)]}


def test_selection_reads_validation_folds_only_and_ties_go_to_the_cheaper():
    folds = lambda v, t: {0: [{"valid": _votes(v), "test": _votes(t)}] * 3}  # noqa: E731
    cands = [{"name": "cheap", "config": None, "rank": (1,), "folds": folds(8, 5)},
             {"name": "valid-best", "config": {}, "rank": (3,), "folds": folds(9, 4)},
             {"name": "test-best", "config": {}, "rank": (2,), "folds": folds(5, 10)}]
    sel = select(cands, ["s"] * 10, ("a", "b"), rank=lambda c: c["rank"])
    assert sel["chosen"] == "valid-best" and sel["nested"]["picks"] == {"valid-best": 3}
    assert sel["nested"]["test"]["all"]["acc"] == pytest.approx(0.4)
    cands[0]["folds"] = folds(9, 5)  # same validation score: the cheaper one wins the tie
    assert select(cands, ["s"] * 10, ("a", "b"), rank=lambda c: c["rank"])["chosen"] == "cheap"


def test_artist_folds_keep_an_artist_in_one_fold_across_pop_and_rock():
    data = [shared_dir() / "data" / d for d in ("gtzan-mini", "extra-4q", "emotify-dev")]
    tracks = discover(data, GENRES)
    assert len(tracks) == 372
    genres_of: dict[str, set[str]] = {}
    for t in tracks:
        genres_of.setdefault(t.group, set()).add(t.genre)
    both = [g for g, genres in genres_of.items() if {"pop", "rock"} <= genres]
    assert both and all(g.startswith("emotify-dev:") for g in both)
    for seed in (0, 1, 2):
        fold_of = {}
        for i, split in enumerate(group_kfold(tracks, 5, seed)):
            for ti in split.test:
                assert fold_of.setdefault(tracks[ti].group, i) == i
        assert len(fold_of) == len(genres_of)


def test_config_round_trips_through_json():
    cfg = TransferConfig(head=HeadConfig(kind="mlp", backbones=("musicnn-msd",), hidden=64), mixup=0.2, fold_seed=2)
    back = config_from_dict(json.loads(json.dumps(dataclasses.asdict(cfg))))
    assert back == cfg and config_name(back) == "mlp [musicnn-msd] hidden 64 mixup 0.2"
