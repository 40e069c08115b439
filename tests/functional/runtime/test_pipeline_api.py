"""The in-process Pipeline API the TUI uses: start/wait/stop, pause, vote mode, model switch, segments, health."""

import json
import threading
import time

import pytest

from clitools import write_clip
from streamtag import events
from streamtag.errors import UsageError
from streamtag.pipeline import Pipeline
from streamtag.settings import ListenSettings


class Collector:
    """A sink that keeps what it receives (thread-safe)."""

    def __init__(self):
        self.events, self.closed, self._lock = [], 0, threading.Lock()

    def publish(self, topic, event):
        with self._lock:
            self.events.append((topic, event))

    def close(self):
        self.closed += 1

    def topic(self, topic):
        with self._lock:
            return [e for t, e in self.events if t == topic]


def test_fast_run_end_to_end(tmp_path, tiny_env):
    clip = write_clip(tmp_path / "disco.wav", "disco", 5.0)
    sink = Collector()
    p = Pipeline(ListenSettings(input=str(clip), fast=True, publish="", model="tiny"), [sink])
    assert p.meta.name == "tiny" and p.provider == ""        # cheap construction: metadata only
    p.start()
    assert p.wait(30)
    p.stop()
    p.stop()                                                   # idempotent
    assert p.error is None and sink.closed == 1
    genre = sink.topic(events.GENRE)
    assert [e["t_end"] for e in genre] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert p.segments[0]["start"] == 0.0 and p.segments[-1]["end"] == 5.0
    assert json.loads(p.save_segments(tmp_path / "s.json").read_text()) == p.segments
    final = sink.topic(events.STATUS)[-1]
    assert final["final"] and final["windows"] == 5 and p.health()["windows"] == 5
    assert p.sample_rate == 22050 and "disco.wav" in p.source_description


def test_pause_vote_mode_and_model_switch_while_running(tmp_path, tiny_env, tiny_models):
    clip = write_clip(tmp_path / "rock.wav", "rock", 8.0)
    sink = Collector()
    p = Pipeline(ListenSettings(input=str(clip), publish="", model="tiny", hop=0.5), [sink])
    p.start()
    try:
        while len(sink.topic(events.GENRE)) < 2:
            time.sleep(0.05)
        p.set_paused(True)
        time.sleep(1.2)
        n_paused = len(sink.topic(events.GENRE))
        time.sleep(1.0)
        assert len(sink.topic(events.GENRE)) == n_paused      # no tagging while paused...
        assert sink.topic(events.LEVEL)[-1]["t"] > 3.0         # ...but capture goes on
        p.set_paused(False)
        p.set_vote_mode("hard")
        assert p.vote_mode == "hard"
        with pytest.raises(UsageError):
            p.set_vote_mode("median")
        with pytest.raises(UsageError, match="cannot load"):
            p.switch_model(str(tiny_models / "broken.onnx"))
        meta = p.switch_model(str(tiny_models / "tiny.onnx"))
        assert meta.name == "tiny" and p.meta is meta
        assert p.wait(30)
    finally:
        p.stop()
    assert p.error is None
    t_ends = [e["t_end"] for e in sink.topic(events.GENRE)]
    assert t_ends == sorted(t_ends) and 7.5 <= t_ends[-1] <= 8.0  # stream time runs on across the switch
    assert [e["seq"] for e in sink.topic(events.GENRE)] == list(range(len(t_ends)))


def test_start_errors_propagate_and_release_the_port(tmp_path, tiny_env):
    from clitools import free_port
    addr = f"tcp://127.0.0.1:{free_port()}"
    p = Pipeline(ListenSettings(input=str(tmp_path / "missing.wav"), publish=addr, model="tiny"))
    with pytest.raises(UsageError, match="no such file"):
        p.start()
    assert p.wait(0)
    clip = write_clip(tmp_path / "a.wav", "jazz", 1.5)
    q = Pipeline(ListenSettings(input=str(clip), fast=True, publish=addr, model="tiny"))
    q.start()                                                   # the port was released
    assert q.wait(30) and q.error is None
    q.stop()
