"""File inputs: formats libsndfile cannot read (decoded in process by PyAV, the decoder registered for their
extensions in ``streamtag.audio.DECODERS``), for ``listen`` and ``tag``; and a paced reader after a stall."""

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clitools import json_lines, streamtag, streamtag_popen, write_clip
from streamtag import events
from streamtag.audio import open_decoder
from streamtag.decode import AvFile


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    """8 s of real metal as WAV and re-encoded by the ffmpeg binary into containers libsndfile refuses."""
    d = tmp_path_factory.mktemp("enc")
    wav = write_clip(d / "metal.wav", "metal", 8.0)
    out = {"wav": wav}
    for name, args in {"aac.m4a": ["-c:a", "aac"], "alac.m4a": ["-c:a", "alac"], "opus.mp4": ["-c:a", "libopus"],
                       "video.mp4": ["-f", "lavfi", "-i", "color=size=32x32:rate=5", "-shortest", "-c:v", "mpeg4",
                                     "-c:a", "aac"]}.items():
        pre, post = (args[:4], args[4:]) if name == "video.mp4" else ([], args)
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav), *pre,
                        *post, str(d / name)], check=True)
        out[name] = d / name
    return out


def _decode_all(path) -> tuple[np.ndarray, int]:
    """Every frame of ``path`` through the decoder registered for its extension."""
    f = open_decoder(path)
    try:
        assert isinstance(f, AvFile)
        parts = []
        while len(block := f.read(10000)):
            assert block.dtype == np.float32 and block.shape[1] == f.channels and len(block) <= 10000
            parts.append(block.copy())
        return np.concatenate(parts), f.rate
    finally:
        f.close()


@pytest.mark.parametrize("name", ["aac.m4a", "alac.m4a", "opus.mp4", "video.mp4"])
def test_containers_libsndfile_cannot_read_are_tagged(encoded, name, real_model):
    with pytest.raises(sf.LibsndfileError):
        sf.info(encoded[name])
    x, rate = _decode_all(encoded[name])
    ref, ref_rate = sf.read(encoded["wav"], dtype="float32", always_2d=True)
    assert abs(len(x) / rate - len(ref) / ref_rate) < 0.1
    if name == "alac.m4a":                                       # lossless: the very samples
        np.testing.assert_allclose(x, ref, atol=1e-4)
    r = streamtag("listen", "--input", encoded[name], "--fast", "--no-tui", "--json", "--no-publish",
                  "--model", real_model)
    assert r.returncode == 0, r.stderr
    genre = [e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]
    assert [e["t_end"] for e in genre[:6]] == [3, 4, 5, 6, 7, 8] and genre[0]["stream"] == name
    seconds = len(x) / rate                                      # an encoder's priming may make it a bit longer:
    if seconds > 8.001:                                          # one more window, ending at the very end
        assert len(genre) == 7 and genre[-1]["t_end"] == pytest.approx(seconds, abs=0.01)
    else:
        assert len(genre) == 6
    assert genre[-1]["genre"] == "metal"


def test_tag_reads_pyav_files_given_and_in_folders(encoded, tiny_env):
    r = streamtag("tag", encoded["aac.m4a"], "--json", "--model", "tiny", "--no-progress", env=tiny_env)
    assert r.returncode == 0, r.stderr
    (res,) = json_lines(r.stdout)
    x, rate = _decode_all(encoded["aac.m4a"])
    seconds = len(x) / rate                                      # 8 s and the encoder's priming
    assert res["path"] == str(encoded["aac.m4a"]) and res["segments"][-1]["end"] == pytest.approx(seconds, abs=0.01)
    assert res["windows"] == 8 + (seconds > 8.001)               # 1-s windows, and one ending at the very end
    r = streamtag("tag", encoded["aac.m4a"].parent, "--json", "--model", "tiny", "--no-progress", env=tiny_env)
    assert r.returncode == 0, r.stderr
    found = sorted(Path(e["path"]).name for e in json_lines(r.stdout))
    assert found == ["aac.m4a", "alac.m4a", "metal.wav", "opus.mp4", "video.mp4"]


def test_paced_file_after_a_stall_drops_nothing_and_keeps_its_timestamps(tmp_path, tiny_env):
    clip = write_clip(tmp_path / "rock.wav", "rock", 6.0)
    proc = streamtag_popen("listen", "--input", clip, "--no-tui", "--json", "--no-publish", "--model", "tiny",
                           env={**tiny_env, "STREAMTAG_BUFFER_SECONDS": "1"})  # the stall outlasts the ring
    try:
        assert '"streamtag.genre"' in proc.stdout.readline()       # 1 s in
        proc.send_signal(signal.SIGSTOP)                            # Ctrl-Z ...
        time.sleep(2.5)
        proc.send_signal(signal.SIGCONT)                            # ... fg
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = json_lines(out)
    genre = [1.0] + [e["t_end"] for e in lines if e["topic"] == events.GENRE]
    assert genre == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]                  # every second of the file, in place
    assert lines[-1]["final"] and lines[-1]["dropped_samples"] == 0
