"""Data discovery, the decoded-audio cache and windowing, on real shared clips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamtag.audio import load_mono
from streamtag.errors import UsageError
from training.data import AudioCache, DataConfig, WindowDataset, discover, label_set, track_key, window_starts

SHARED = Path(os.environ.get("STREAMTAG_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
MINI = SHARED / "data" / "gtzan-mini"
EXTRA = SHARED / "data" / "extra-4q"


def write_crop(src: Path, dst: Path, seconds: float) -> Path:
    """A short real-audio crop of ``src`` written as WAV."""
    x, sr = sf.read(str(src), dtype="float32", frames=int(seconds * 44100), always_2d=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dst), x[: int(seconds * sr)], sr)
    return dst


def test_discover_both_sources():
    tracks = discover([MINI, EXTRA])
    assert len(tracks) == 222
    assert label_set(tracks) == ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
                                 "reggae", "rock")
    assert {t.source for t in tracks} == {"gtzan-mini", "extra-4q"}
    t = next(t for t in tracks if t.key == "blues/blues.00000")
    assert t.group == "gtzan-mini:0" and t.path.suffix == ".flac"
    t = next(t for t in tracks if t.source == "extra-4q" and t.genre == "blues")
    assert t.group.startswith("extra-4q:") and not t.group.startswith("extra-4q:track:")  # artist column used
    # a file missing from tracks.csv is its own group
    assert next(t for t in tracks if t.key == "jazz/jazz.00011").group == "gtzan-mini:track:jazz/jazz.00011"


def test_track_key_drops_only_audio_extensions():
    assert track_key("blues/blues.00029.wav") == "blues/blues.00029"
    assert track_key("blues/blues.00029") == "blues/blues.00029"
    assert track_key("jazz/x.mp3") == "jazz/x"


def test_discover_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        discover([tmp_path / "nope"])
    with pytest.raises(UsageError, match="no audio files"):
        discover([tmp_path])
    (tmp_path / "blues").mkdir()
    (tmp_path / "blues" / "notes.txt").write_text("not audio")  # ignored, not an error
    with pytest.raises(UsageError, match="no audio files"):
        discover([tmp_path])
    write_crop(MINI / "blues" / "blues.00000.flac", tmp_path / "blues" / "a.wav", 1.0)
    with pytest.raises(UsageError, match="only one genre"):
        discover([tmp_path])
    write_crop(MINI / "metal" / "metal.00000.flac", tmp_path / "metal" / "b.wav", 1.0)
    assert [t.genre for t in discover([tmp_path])] == ["blues", "metal"]
    with pytest.raises(UsageError, match="unknown labels metal"):
        discover([tmp_path], labels=("blues", "jazz"))


def test_cache_is_memory_mapped_and_matches_runtime_path(tmp_path):
    track = discover([MINI])[0]
    cache = AudioCache(tmp_path / "cache", 16000)
    x = cache.load(track)
    assert isinstance(x, np.memmap) and x.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(x), load_mono(track.path, 16000))
    f = cache.path_for(track)
    stamp = f.stat().st_mtime_ns
    cache.load(track)
    assert f.stat().st_mtime_ns == stamp  # served from the cache, not re-decoded
    assert AudioCache(tmp_path / "cache", 22050).path_for(track) != f  # rate is part of the key


def test_unreadable_file_fails_with_its_name(tmp_path):
    for g in ("blues", "metal"):
        write_crop(MINI / g / f"{g}.00000.flac", tmp_path / g / "ok.wav", 1.0)
    bad = tmp_path / "metal" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wave file")
    tracks = discover([tmp_path])
    with pytest.raises(UsageError, match="broken.wav: cannot decode"):
        AudioCache(tmp_path / "cache", 16000).prepare(tracks)


@pytest.mark.parametrize("n,window,hop", [(100, 30, 15), (100, 30, 30), (101, 30, 7), (30, 30, 10), (10, 30, 10)])
def test_window_starts_cover_the_clip(n, window, hop):
    starts = window_starts(n, window, hop)
    covered = np.zeros(max(n, window), bool)
    for s in starts:
        covered[s:s + window] = True
        assert s + window <= max(n, window)
    assert covered[:n].all()
    assert starts == sorted(set(starts)) and starts[-1] + window == max(n, window)
    assert all(b - a <= hop for a, b in zip(starts, starts[1:]))


def test_window_dataset_eval_and_train(tmp_path):
    srcs = [MINI / "blues" / "blues.00000.flac", MINI / "metal" / "metal.00001.flac"]
    for s in srcs:
        write_crop(s, tmp_path / "d" / s.parent.name / (s.stem + ".wav"), 7.0)
    tracks = discover([tmp_path / "d"])
    cfg = DataConfig(sample_rate=16000, window_seconds=3.0, hop_seconds=1.5, train_crops_per_track=5)
    cache = AudioCache(tmp_path / "cache", 16000)
    ev = WindowDataset(tracks, ("blues", "metal"), cache, cfg, train=False)
    assert len(ev) == 2 * len(window_starts(7 * 16000, 48000, 24000)) == 2 * 4
    x, y, t = ev[len(ev) - 1]
    assert x.shape == (48000,) and y == 1 and t == 1
    full = load_mono(tracks[1].path, 16000)
    np.testing.assert_array_equal(x.numpy(), full[-48000:])  # last window flush with the end
    tr = WindowDataset(tracks, ("blues", "metal"), cache, cfg, train=True, seed=0)
    assert len(tr) == 10
    crops = [tr[i][0].numpy() for i in range(5)]  # five random crops of track 0 differ
    assert len({c[:100].tobytes() for c in crops}) > 1
    with pytest.raises(UsageError, match="unknown labels"):
        WindowDataset(tracks, ("blues", "jazz"), cache, cfg, train=False)


def test_offline_variants_are_cached_and_used_in_training(tmp_path):
    src = MINI / "jazz" / "jazz.00001.flac"
    for g in ("jazz", "pop"):
        write_crop(src, tmp_path / "d" / g / "x.wav", 4.0)
    tracks = discover([tmp_path / "d"])
    cfg = DataConfig(sample_rate=16000, train_crops_per_track=12, pitch_semitones=(2.0,), stretch_rates=(0.5,))
    assert cfg.variants == ("", "pitch+2", "stretch0.5")
    cache = AudioCache(tmp_path / "cache", 16000)
    ds = WindowDataset(tracks, ("jazz", "pop"), cache, cfg, train=True, seed=1)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2 * 3
    stretched = cache.load(tracks[0], "stretch0.5")
    assert abs(stretched.shape[0] - 8 * 16000) < 800  # half speed: twice as long
    originals = {np.asarray(cache.load(tracks[0]))[s:s + 64].tobytes() for s in range(0, 16000, 1)}
    from_variants = sum(ds[i][0].numpy()[:64].tobytes() not in originals for i in range(12))
    assert from_variants > 0  # some crops come from the shifted/stretched copies
