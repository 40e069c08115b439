"""Source helpers that need no device: raw PCM decoding, URL detection, input selection errors."""

import io

import numpy as np
import pytest

from streamtag.errors import UsageError
from streamtag.sources import FileSource, StdinSource, is_url, open_source, pcm_blocks


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
