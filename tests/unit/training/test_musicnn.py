"""musicnn re-implementation: the reference outputs of the original TensorFlow model, strict loading, pruning."""

import numpy as np
import pytest
import torch

from streamtag.audio import load_mono
from training.frontend import LogMel
from training.models.mobilenet import GTZAN_GENRES, shared_dir
from training.models.musicnn import (ABSENT_LOGIT, FRONTEND, FRONTEND_32K, MSD_GENRE_TAGS, ConvReluNorm, TagGenres,
                                     load_musicnn, tag_names, weights_path)

CLIPS = ("rock/rock.00000.flac", "pop/pop.00000.flac", "classical/classical.00000.flac")


@pytest.fixture(scope="module")
def reference():
    with np.load(shared_dir() / "weights" / "musicnn-reference.npz") as z:
        return {k: z[k] for k in z.files}


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


@pytest.mark.parametrize("clip", CLIPS)
def test_front_end_gives_the_reference_mel_patches(reference, clip):
    wave = load_mono(shared_dir() / "data" / "gtzan-mini" / clip, FRONTEND.sample_rate)
    with torch.no_grad():
        mel = LogMel(FRONTEND)(torch.from_numpy(wave)[None])[0, 0].T.numpy()  # (frames, bands)
    want = reference[f"mel:{clip}"]
    got = mel[: want.shape[0] * 187].reshape(want.shape)
    assert _rel(got, want) < 1e-5


@pytest.mark.parametrize("variant", ["msd", "mtt"])
def test_tags_and_embeddings_match_the_reference(reference, variant):
    net = load_musicnn(variant)
    for clip in CLIPS:
        spec = torch.from_numpy(reference[f"mel:{clip}"]).transpose(1, 2)[:, None]  # (patches, 1, bands, frames)
        with torch.no_grad():
            emb = net.embed(spec)
            tags = torch.sigmoid(net.head(emb))
        assert _rel(emb.numpy(), reference[f"{variant}-penultimate:{clip}"]) < 1e-4
        assert np.abs(tags.numpy() - reference[f"{variant}-tags:{clip}"]).max() < 1e-5


def test_dropping_dead_filters_changes_nothing_but_the_cost(reference):
    spec = torch.from_numpy(reference[f"mel:{CLIPS[0]}"]).transpose(1, 2)[:, None]
    full, pruned = load_musicnn("msd", prune=False), load_musicnn("msd")
    live = [m.conv.out_channels for m in pruned.modules() if isinstance(m, ConvReluNorm)]
    assert live[:2] == [23, 14]  # of 204 timbral filters each: the rest decayed to ~1e-7 and below
    with torch.no_grad():
        torch.testing.assert_close(pruned.embed(spec), full.embed(spec), rtol=0, atol=1e-5)


def test_loading_uses_every_array_and_no_other(tmp_path):
    with np.load(weights_path("msd")) as z:
        arrays = {k: z[k] for k in z.files}
    missing = dict(arrays)
    missing.pop("conv2d_3/bias")
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match=r"missing \['conv2d_3/bias'\]"):
        load_musicnn(path=tmp_path / "missing.npz")
    np.savez(tmp_path / "extra.npz", **arrays, **{"dense_2/kernel": np.zeros((50, 2), np.float32)})
    with pytest.raises(ValueError, match=r"unused \['dense_2/kernel'\]"):
        load_musicnn(path=tmp_path / "extra.npz")
    bad = dict(arrays)
    bad["dense/kernel"] = bad["dense/kernel"][:, :100]
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="dense/kernel: shape"):
        load_musicnn(path=tmp_path / "shape.npz")


def test_32k_reading_gives_what_the_16k_front_end_gives():
    """The fused graph reads musicnn's analysis from 32-kHz audio; the network's answers stay the same."""
    path = shared_dir() / "data" / "gtzan-mini" / "rock" / "rock.00003.flac"
    a, b = load_mono(path, 16000), load_mono(path, 32000)
    starts = (16000, 160000)
    net = load_musicnn("msd")
    with torch.no_grad():
        s16 = LogMel(FRONTEND)(torch.from_numpy(np.stack([a[s:s + 48000] for s in starts])))
        s32 = LogMel(FRONTEND_32K)(torch.from_numpy(np.stack([b[2 * s:2 * s + 96000] for s in starts])))
        t16, t32 = torch.sigmoid(net(s16)), torch.sigmoid(net(s32))
    assert s16.shape == s32.shape
    assert float((t16 - t32).abs().max()) < 0.01


def test_tag_genres_take_the_best_named_tag_and_floor_the_rest():
    tags = tag_names("msd")
    logits = torch.full((1, len(tags)), -5.0)
    logits[0, tags.index("hard rock")] = 2.0
    logits[0, tags.index("rock")] = 1.0
    logits[0, tags.index("jazz")] = 0.5
    out = TagGenres(tags, GTZAN_GENRES, MSD_GENRE_TAGS)(logits)[0]
    g = GTZAN_GENRES.index
    assert out[g("rock")] == 2.0 and out[g("jazz")] == 0.5 and out[g("pop")] == -5.0
    assert out[g("classical")] == out[g("reggae")] == out[g("disco")] == ABSENT_LOGIT
    with pytest.raises(ValueError, match="unknown tags in the genre map: polka"):
        TagGenres(tags, GTZAN_GENRES, {"rock": ("polka",)})
