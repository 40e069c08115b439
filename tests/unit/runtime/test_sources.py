"""Source helpers that need no device: raw PCM decoding, URL detection and normalisation, reconnect backoff,
ICY titles, input selection errors."""

import io
import random

import numpy as np
import pytest

from streamtag.errors import UsageError
from streamtag.icy import normalize_url, parse_title
from streamtag.sources import FileSource, StdinSource, backoff, is_url, open_source, pcm_blocks


def test_s16le_blocks_decode_and_keep_partial_frames_for_later():
    x = np.array([[0, 16384], [-32768, 32767], [100, -100]], dtype="<i2")

    class Dribble(io.BytesIO):
        def read(self, n=-1):
            return super().read(min(n, 5))  # split frames across reads

    blocks = list(pcm_blocks(Dribble(x.tobytes()), 2, "s16le", 2))
    got = np.concatenate(blocks)
    np.testing.assert_allclose(got, x / 32768.0)


def test_f32le_blocks():
    x = np.random.default_rng(1).standard_normal((7, 3)).astype("<f4")
    got = np.concatenate(list(pcm_blocks(io.BytesIO(x.tobytes()), 3, "f32le", 4)))
    np.testing.assert_array_equal(got, x)


def test_is_url():
    assert is_url("http://x/y.mp3") and is_url("HTTPS://x") and is_url("icecast://radio:8000/live")
    assert not is_url("song.flac") and not is_url("-") and not is_url("ftp://x")


def test_open_source_picks_by_input(tmp_path):
    assert isinstance(open_source("-", None, 8000, 2, "s16le", False), StdinSource)
    with pytest.raises(UsageError, match="no such file"):
        open_source(str(tmp_path / "missing.wav"), None, None, None, "s16le", False)
    with pytest.raises(UsageError, match="is a directory"):
        FileSource(str(tmp_path))


def test_icecast_urls_in_any_case_become_http():
    assert normalize_url("ICECAST://radio:8000/live") == "http://radio:8000/live"
    assert normalize_url("IceCast://r/x") == "http://r/x" and normalize_url("https://r/x") == "https://r/x"


def test_backoff_waits_first_doubles_caps_and_jitters():
    rng = random.Random(1)
    first = [backoff(0, rng) for _ in range(200)]
    assert 0.75 <= min(first) and max(first) <= 1.25 and len(set(first)) > 100       # jittered around 1 s
    assert 3.0 <= backoff(2, rng) <= 5.0 and backoff(50, rng) <= 60 * 1.25


def test_icy_titles():
    assert parse_title(b"StreamTitle='Band - Song';StreamUrl='http://x';\0\0") == "Band - Song"
    assert parse_title(b"StreamTitle='It's; fine';") == "It's; fine"
    assert parse_title("StreamTitle='Motörhead';".encode("latin-1")) == "Motörhead"
    assert parse_title(b"StreamUrl='x';") is None
