"""Real capture: PortAudio records the PulseAudio null sink's monitor while `paplay` plays a real clip."""

import subprocess
import time

import pytest

from clitools import json_lines, streamtag, streamtag_popen, write_clip
from streamtag import events

pytestmark = pytest.mark.audio


def test_listen_through_portaudio_tags_the_clip_without_drops(pulse, tmp_path, real_model):
    clip = write_clip(tmp_path / "classical.wav", "classical", 7.0)   # 22050 Hz mono, like the sink
    proc = streamtag_popen("listen", "--no-tui", "--json", "--no-publish", "--duration", "8", "--rate", "22050",
                           "--channels", "1", "--model", real_model, env={"PULSE_SERVER": pulse["PULSE_SERVER"]})
    try:
        banner = proc.stderr.readline()     # printed once the first audio callback arrived
        assert "device" in banner and "22050 Hz" in banner, banner + proc.stderr.read()
        time.sleep(0.3)
        subprocess.run(["paplay", "--device=vsink", str(clip)], env=pulse, check=True, timeout=30)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = json_lines(out)
    genre = [e for e in lines if e["topic"] == events.GENRE]
    assert len(genre) == 6 and genre[0]["stream"] == "mic:default"
    assert [e["genre"] for e in genre[-3:]] == ["classical"] * 3
    status = lines[-1]
    assert status["topic"] == events.STATUS and status["final"]
    assert status["dropped_samples"] == 0 and status["overflows"] == 0
    assert all(0 <= e["latency_ms"] < 1000 for e in genre)


def test_devices_lists_the_pulse_input(pulse):
    r = streamtag("devices", env={"PULSE_SERVER": pulse["PULSE_SERVER"]})
    assert r.returncode == 0, r.stderr
    assert "default" in r.stdout and "*" in r.stdout
