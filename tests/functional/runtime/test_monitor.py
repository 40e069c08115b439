"""`streamtag monitor` on files: segment log through a SIGKILL, a failing station, metrics, report; shards + proxy."""

import csv
import io
import json
import signal
import sqlite3
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from clitools import ChildLines, assert_one_line_error, free_port, json_lines, streamtag, streamtag_popen, write_clip


def _metric(text, name, **labels):
    """The value of sample ``name{labels}`` in a Prometheus exposition (None when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.fixture
def change_clip(tmp_path):
    """5 s of classical, then 10 s of metal (real GTZAN audio)."""
    a, rate = sf.read(write_clip(tmp_path / "a.wav", "classical", 5.0, n=1), dtype="float32")
    b, _ = sf.read(write_clip(tmp_path / "b.wav", "metal", 10.0), dtype="float32")
    sf.write(tmp_path / "change.wav", np.concatenate([a, b]), rate)
    return tmp_path / "change.wav"


def test_segment_log_survives_sigkill_and_a_failing_station(tmp_path, change_clip, real_model):
    jazz = write_clip(tmp_path / "jazz.wav", "jazz", 15.0)
    stations = tmp_path / "stations.toml"
    stations.write_text(f'[[station]]\nname = "x"\ninput = "{change_clip}"\nvote = "soft"\nvote_window = 3\n\n'
                        f'[[station]]\nname = "y"\ninput = "{jazz}"\n\n'
                        f'[[station]]\nname = "bad"\ninput = "{tmp_path / "missing.wav"}"\n')
    log, port = tmp_path / "radio.db", free_port()
    mon = streamtag_popen("monitor", stations, "--no-tui", "--no-publish", "--model", real_model, "--log", log,
                          "--metrics-port", port, "--status-interval", "1")
    try:
        out = ChildLines(mon)
        out.wait("the change to metal", lambda: any(e["genre"] == "metal" for e in out.get("streamtag.change.x")))
        out.wait("a status refresh", lambda: len([e for e in out.get("streamtag.status.x")]) >= 2)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        mon.send_signal(signal.SIGKILL)                                        # no chance to close anything
        mon.wait(10)
    finally:
        mon.kill()
    windows_x = _metric(metrics, "streamtag_windows_total", station="x")
    assert windows_x >= 6 and _metric(metrics, "streamtag_latency_seconds_count", station="x") == windows_x
    assert _metric(metrics, "streamtag_genre", station="x", genre="metal") == 1
    assert _metric(metrics, "streamtag_genre", station="x", genre="classical") == 0
    assert _metric(metrics, "streamtag_windows_total", station="y") >= 1
    assert _metric(metrics, "streamtag_dropped_samples_total", station="y") == 0
    assert _metric(metrics, "streamtag_up", station="y") == 1
    assert [e["state"] for e in out.get("streamtag.status.bad")] == ["down"]  # failed at once, the others ran

    db = sqlite3.connect(log)
    rows = db.execute("SELECT station, genre, state, end_wall - start_wall, windows FROM segments ORDER BY id").fetchall()
    x = [r for r in rows if r[0] == "x"]
    assert [(r[1], r[2]) for r in x] == [("classical", "closed"), ("metal", "open")]   # up to the last change
    assert 3.0 <= x[0][3] <= 9.0 and x[1][4] >= 1
    assert [r[2] for r in rows if r[0] == "y"] == ["open"]
    killed = len(rows)
    db.close()

    again = streamtag("monitor", stations, "--no-tui", "--no-publish", "--model", real_model, "--log", log,
                      "--fast", "--duration", "4")
    assert_one_line_error(again, 2, "station bad:", "no such file")   # the bad station fails; the others run
    rows = sqlite3.connect(log).execute("SELECT station, genre, state FROM segments ORDER BY id").fetchall()
    assert sorted(r[2] for r in rows[:killed]) == ["closed", "recovered", "recovered"]  # the killed run's open rows
    assert all(r[2] == "closed" for r in rows[killed:]) and {r[0] for r in rows[killed:]} == {"x", "y"}

    report = streamtag("report", log, "--csv")
    assert report.returncode == 0, report.stderr
    table = list(csv.DictReader(io.StringIO(report.stdout)))
    assert {(r["station"], r["genre"]) for r in table} >= {("x", "classical"), ("x", "metal")}
    for station in ("x", "y"):
        assert abs(sum(float(r["share"]) for r in table if r["station"] == station) - 1) < 1e-3
    later = streamtag("report", log, "--since", str(time.time() + 3600))
    assert later.returncode == 0 and later.stdout == ""


def test_stations_file_errors_are_one_line(tmp_path, tiny_env):
    cases = {"missing.toml": None, "empty.toml": "", "noname.toml": '[[station]]\ninput = "x.wav"\n',
             "badname.toml": '[[station]]\nname = "a.b"\n', "dup.toml": '[[station]]\nname = "a"\n[[station]]\nname = "a"\n',
             "key.toml": '[[station]]\nname = "a"\nmodel = "tiny"\n', "value.toml": '[[station]]\nname = "a"\nhop = "x"\n'}
    needles = {"missing.toml": "not found", "empty.toml": "no [[station]]", "noname.toml": "name must be",
               "badname.toml": "name must be", "dup.toml": "duplicate name", "key.toml": "unknown key 'model'",
               "value.toml": "hop"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        r = streamtag("monitor", tmp_path / name, "--no-tui", "--no-publish", env=tiny_env)
        assert_one_line_error(r, 2, needles[name])
    r = streamtag("monitor", tmp_path / "dup.toml", "--shard", "3/2", env=tiny_env)
    assert_one_line_error(r, 2, "shard")


def test_shards_joined_by_the_proxy(tmp_path, tiny_env):
    clips = [write_clip(tmp_path / f"{g}.wav", g, 4.0) for g in ("blues", "disco", "pop")]
    stations = tmp_path / "stations.toml"
    stations.write_text("".join(f'[[station]]\nname = "s{i}"\ninput = "{c}"\n' for i, c in enumerate(clips)))
    ports = [free_port() for _ in range(3)]
    shard_addr = [f"tcp://127.0.0.1:{p}" for p in ports[:2]]
    proxy = streamtag_popen("proxy", "--connect", shard_addr[0], "--connect", shard_addr[1],
                            "--publish", f"tcp://127.0.0.1:{ports[2]}", env=tiny_env)
    sub = streamtag_popen("subscribe", "--connect", f"tcp://127.0.0.1:{ports[2]}", "--topic", "streamtag.genre",
                          env=tiny_env)
    shards = []
    try:
        time.sleep(0.5)
        shards = [streamtag_popen("monitor", stations, "--shard", f"{i + 1}/2", "--no-tui", "--model", "tiny",
                                  "--publish", shard_addr[i], env=tiny_env) for i in range(2)]
        outs = [s.communicate(timeout=60)[0] for s in shards]
        time.sleep(0.5)
        sub.send_signal(signal.SIGTERM)
        got = json_lines(sub.communicate(timeout=10)[0])
        proxy.send_signal(signal.SIGTERM)
        proxy.wait(10)
    finally:
        for p in [proxy, sub, *shards]:
            p.kill()
    assert [s.returncode for s in shards] == [0, 0] and proxy.returncode == 0
    ran = [{json.loads(x)["stream"] for x in out.splitlines()} for out in outs]
    assert ran == [{"s0", "s2"}, {"s1"}]                                      # shard 1/2: s0, s2; 2/2: s1
    by_station = {e["topic"]: e["stream"] for e in got}
    assert by_station == {f"streamtag.genre.s{i}": f"s{i}" for i in range(3)}  # all shards in one feed
