"""Transfer head on cached embeddings: starts at the zero-shot answer, L2-SP, caching, installing; selection."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from streamtag.errors import UsageError
from training.data import Track, discover
from training.models import build_model
from training.models.mobilenet import shared_dir
from training.splits import Split
from training.transfer import (GENRES, TIE, EmbeddingHead, TransferConfig, _run_splits, config_from_dict, embed_tracks,
                               exclude_classes, fit_head, run_holdout, select, selection_table,
                               thin_classes)

CFG = TransferConfig(views=1, hop_seconds=6.0, train=dataclasses.replace(TransferConfig().train, epochs=2, batch_size=8))
TRAIN_BOTH = Split("t", (0, 1), (), ())


@pytest.fixture(scope="module")
def model():
    return build_model("mobilenet", GENRES).eval()


@pytest.fixture(scope="module")
def tracks():
    found = discover([shared_dir() / "data/gtzan-mini"], GENRES)
    return [t for t in found if t.key in ("metal/metal.00000", "classical/classical.00000")]


@pytest.fixture(scope="module")
def embeddings(model, tracks, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    emb = embed_tracks(model, tracks, GENRES, CFG, cache)
    again = embed_tracks(model, tracks, GENRES, CFG, cache)  # read back from the cache file
    np.testing.assert_array_equal(again.x, emb.x)
    assert len(list(cache.glob("embeddings-*.npz"))) == 1
    return emb


def test_embeddings_hold_a_clean_and_an_augmented_view_of_every_window(embeddings):
    n_clean = int((embeddings.view == 0).sum())
    assert embeddings.x.shape == (2 * n_clean, 384) and n_clean >= 2 * 4
    assert set(embeddings.label.tolist()) == {GENRES.index("metal"), GENRES.index("classical")}
    clean, augmented = embeddings.x[embeddings.view == 0], embeddings.x[embeddings.view == 1]
    assert not np.allclose(clean, augmented, atol=1e-3)


def test_head_starts_at_zero_shot_trains_and_installs(model, tracks, embeddings, tmp_path):
    x = embeddings.select([0, 1], clean=True).tensors[0]
    head = EmbeddingHead(model)
    with torch.no_grad():
        assert float(head.l2sp(1.0)) == 0.0
        torch.testing.assert_close(head(x), model.backbone.head(x))

    trained, result = fit_head(model, tracks, embeddings, TRAIN_BOTH, CFG, tmp_path / "run")
    trained.eval()
    target = build_model("mobilenet", GENRES).eval()
    with torch.no_grad():
        assert result.best_epoch == 2 and float(trained.l2sp(1.0)) > 0
        trained.install(target)
        torch.testing.assert_close(target.backbone.head(x), trained(x))
        # the genres without training data (protected) read the AudioSet hidden layer beside the trained one
        absent = [i for i, g in enumerate(GENRES) if g not in ("metal", "classical")]
        assert target.backbone.classifier[2].out_features == 2 * model.backbone.classifier[2].out_features
        torch.testing.assert_close(target.backbone.head(x)[:, absent], model.backbone.head(x)[:, absent])
        assert not torch.allclose(target.backbone.head(x)[:, GENRES.index("metal")],
                                  model.backbone.head(x)[:, GENRES.index("metal")])


def test_protection_keeps_rows_of_genres_with_too_few_training_artists(model, tracks, embeddings, tmp_path):
    start = model.backbone.classifier[5].weight.detach()
    metal = GENRES.index("metal")
    absent = [i for i, g in enumerate(GENRES) if g not in ("metal", "classical")]
    # 1: only genres without training data keep their rows; 0: every row trains; 2: one-artist genres keep theirs too
    metal_rows = {}
    # rival: the kept rows stay in the softmax as fixed rivals, still untouched
    for below, rival, kept, trained in ((1, False, absent, [metal]), (0, False, [], [metal, *absent]),
                                        (2, False, list(range(len(GENRES))), []), (1, True, absent, [metal])):
        cfg = dataclasses.replace(CFG, train_part="last", protect_below=below, protect_rival=rival)
        head, _ = fit_head(model, tracks, embeddings, TRAIN_BOTH, cfg, tmp_path / f"{below}{rival}")
        rows = head.mlp[3].weight.detach()
        assert all(torch.equal(rows[i], start[i]) for i in kept)
        assert not any(torch.equal(rows[i], start[i]) for i in trained)
        metal_rows[below, rival] = rows[metal]
    assert not torch.allclose(metal_rows[1, False], metal_rows[1, True])  # rivals change what metal learns


def test_thin_classes_counts_distinct_artists_in_the_training_tracks():
    def track(genre, group):
        return Track(Path(f"{genre}.wav"), genre, "src", f"src:{group}", f"{genre}/x")
    tracks = [track("rock", "a"), track("rock", "a"), track("pop", "b"), track("pop", "c"), track("jazz", "d")]
    labels = ("jazz", "pop", "rock", "disco")
    assert thin_classes(tracks, range(5), labels, 2) == ["jazz", "rock", "disco"]
    assert thin_classes(tracks, [0, 2, 3], labels, 1) == ["jazz", "disco"]
    assert thin_classes(tracks, range(5), labels, 0) == []


def test_train_parts_choose_the_trainable_weights(model):
    last = EmbeddingHead(model, train_part="last")
    assert not any(p.requires_grad for p in last.mlp[0].parameters())
    assert all(p.requires_grad for p in last.mlp[3].parameters())
    bias = EmbeddingHead(model, train_part="bias")
    assert [n for n, p in bias.named_parameters() if p.requires_grad] == ["mlp.5.bias"]  # the slice keeps the classifier's indices
    with pytest.raises(ValueError, match="train_part"):
        EmbeddingHead(model, train_part="all")


def test_holdout_of_an_unknown_source_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no data source named 'fma'"):
        run_holdout([shared_dir() / "data/gtzan-mini"], "fma", CFG, tmp_path)


def test_cv_folds_keep_validation_and_test_votes_for_selection(model, tracks, embeddings, tmp_path):
    split = Split("f0", train=(0, 1), valid=(1,), test=(0,))
    report = _run_splits(model, tracks, embeddings, [split], CFG, tmp_path, "unit")
    votes = report["folds"][0]["votes"]
    assert votes["valid"]["transfer"]["track"] == [1] and votes["test"]["zero_shot"]["track"] == [0]
    assert votes["valid"]["transfer"]["label"] == [GENRES.index(tracks[1].genre)]
    assert json.loads((tmp_path / "cv.json").read_text())["track_sources"] == ["gtzan-mini"] * 2
    sel = select([{**report, "run_dir": "r"}])
    assert [c["name"] for c in sel["candidates"]] == ["zero-shot", "head l2sp 0.1 views 1"]
    assert config_from_dict(sel["candidates"][1]["config"]) == CFG


def _votes(pairs):
    """``[(track, label, predicted), ...]`` -> votes dict."""
    return {"track": [p[0] for p in pairs], "label": [p[1] for p in pairs], "soft": [p[2] for p in pairs]}


def _report(l2sp, fold_seed, valid_right, test_right):
    """Two folds of two tracks (labels 0 and 1) each; the head is right on the first ``*_right`` tracks of each."""
    cfg = dataclasses.asdict(dataclasses.replace(TransferConfig(), l2sp=l2sp, fold_seed=fold_seed))
    folds = []
    for f in range(2):
        def votes(right, base):
            return _votes([(base + i, i, i if i < right else 1 - i) for i in range(2)])
        folds.append({"votes": {
            "valid": {"transfer": votes(valid_right, 4 * f), "zero_shot": votes(1, 4 * f)},
            "test": {"transfer": votes(test_right, 4 * f + 2), "zero_shot": votes(1, 4 * f + 2)}}})
    return {"config": cfg, "folds": folds, "track_sources": ["a", "a", "b", "b"] * 2, "run_dir": f"{l2sp}-{fold_seed}"}


def test_select_decides_on_validation_votes_never_test_votes():
    # l2sp 0.01: perfect on validation, wrong on test; l2sp 1: half right on validation, perfect on test
    reports = [_report(0.01, s, 2, 0) for s in (0, 1)] + [_report(1.0, s, 1, 2) for s in (0, 1)]
    sel = select(reports)
    assert sel["chosen"] == "head l2sp 0.01" and sel["chosen_runs"] == ["0.01-0", "0.01-1"]
    assert sel["chosen_config"]["l2sp"] == 0.01 and sel["fold_seeds"] == [0, 1]
    by_name = {c["name"]: c for c in sel["candidates"]}
    assert by_name["head l2sp 0.01"]["valid_macro_acc"] == 1.0 and by_name["head l2sp 0.01"]["test"]["all"]["acc"] == 0.0
    assert by_name["zero-shot"]["valid_macro_acc"] == 0.5
    assert sel["nested"]["picks"] == {"head l2sp 0.01": 4} and sel["nested"]["test"]["all"]["acc"] == 0.0
    assert by_name["head l2sp 1"]["test"]["b"]["acc"] == 1.0
    assert len(selection_table(sel)) == 2 + 3 + 1


def test_select_breaks_near_ties_toward_the_audioset_answer():
    # every candidate equal on validation: the zero-shot head is closest to AudioSet
    reports = [_report(0.01, 0, 1, 2), _report(1.0, 0, 1, 2)]
    assert select(reports)["chosen"] == "zero-shot"
    assert TIE > 0


def test_select_refuses_mismatched_fold_seeds_and_runs_without_validation_votes():
    with pytest.raises(UsageError, match="fold seeds"):
        select([_report(0.01, 0, 1, 1), _report(0.01, 1, 1, 1), _report(1.0, 0, 1, 1)])
    old = _report(0.1, 0, 1, 1)
    for fold in old["folds"]:
        del fold["votes"]["valid"]
    with pytest.raises(UsageError, match="no validation votes"):
        select([old])


def test_excluded_classes_leave_a_smoothed_loss_over_the_other_classes_alone():
    # label smoothing puts target mass on an excluded class: it must not push the other logits down
    torch.manual_seed(0)
    z = torch.randn(5, 4, requires_grad=True)
    excluded = torch.tensor([False, False, True, False])
    y = torch.tensor([0, 1, 3, 0, 1])
    target = torch.nn.functional.one_hot(y, 4).float() * 0.8 + 0.2 / 4
    loss = -(target * torch.log_softmax(exclude_classes(z, excluded), dim=1)).sum(1).mean()
    (grad,) = torch.autograd.grad(loss, z)
    active = ~excluded
    ref_z = z.detach()[:, active].clone().requires_grad_(True)
    ref = -(target[:, active] * torch.log_softmax(ref_z, dim=1)).sum(1).mean()
    (ref_grad,) = torch.autograd.grad(ref, ref_z)
    torch.testing.assert_close(grad[:, active], ref_grad)
    assert torch.equal(grad[:, 2], torch.zeros(5)) and abs(float(grad[:, active].sum())) < 1e-6
    assert (exclude_classes(z, excluded).argmax(1) != 2).all()
