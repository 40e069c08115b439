"""Radio monitoring against a real Icecast server: two mounts fed in real time, a source killed and restarted."""

import json
import signal
import sqlite3
import time

import pytest

from clitools import ChildLines, streamtag, streamtag_popen, write_clip
from radio import Icecast, push
from streamtag import events


@pytest.fixture
def icecast():
    server = Icecast()
    yield server
    server.stop()


def test_monitor_tags_two_mounts_and_rides_out_a_source_restart(icecast, tmp_path, real_model):
    metal = [write_clip(tmp_path / f"metal{n}.wav", "metal", 20.0, n=n) for n in (0, 1)]
    classical = write_clip(tmp_path / "classical.wav", "classical", 30.0, n=1)
    sources = [push(icecast, "a", metal[0], "Band A - First song"), push(icecast, "b", classical, "Quartet - Largo")]
    stations = tmp_path / "stations.toml"
    upper = "ICECAST" + icecast.url("a").removeprefix("icecast")            # any case of the scheme works
    stations.write_text(f'[[station]]\nname = "a"\ninput = "{upper}"\n'
                        f'[[station]]\nname = "b"\ninput = "{icecast.url("b")}"\n')
    log = tmp_path / "segments.db"
    mon = streamtag_popen("monitor", stations, "--no-tui", "--no-publish", "--model", real_model, "--log", log,
                          "--status-interval", "1")
    try:
        out = ChildLines(mon)
        genre_a = "streamtag.genre.a"
        out.wait("3 windows of station a", lambda: len(out.get(genre_a)) >= 3)
        sources[0].kill()                                                    # the studio's encoder dies
        sources[0].wait()
        out.wait("the outage", lambda: out.get("streamtag.outage.a"))
        time.sleep(1.0)
        sources[0] = push(icecast, "a", metal[1], "Band A - Second song")    # ... and comes back
        out.wait("audio back on a", lambda: any(e["state"] == "connected" for e in out.get("streamtag.outage.a")))
        back = len(out.get(genre_a))
        out.wait("3 more windows of a", lambda: len(out.get(genre_a)) >= back + 3)
        mon.send_signal(signal.SIGTERM)
        mon.wait(20)
        out.join()
    finally:
        mon.kill()
        for s in sources:
            s.kill()
    assert mon.returncode == 0, mon.stderr.read()
    assert "Traceback" not in mon.stderr.read()

    for name, genre, titles in (("a", "metal", {"Band A - First song", "Band A - Second song"}),
                                ("b", "classical", {"Quartet - Largo"})):
        ge = out.get(f"streamtag.genre.{name}")
        assert [e["seq"] for e in ge] == list(range(len(ge)))                     # nothing lost in the process...
        ends = [e["t_end"] for e in ge]                                          # ...nor in stream time
        assert ends[:-1] == [3.0 + i for i in range(len(ge) - 1)]
        assert 0 < ends[-1] - ends[-2] <= 1.0             # the last: on the grid, or ending where the audio stopped
        assert all(e["t_end"] - e["t_start"] == pytest.approx(3.0, abs=0.002) for e in ge)
        assert all(e["stream"] == name for e in ge)
        assert sum(e["genre"] == genre for e in ge) >= 0.8 * len(ge), [e["genre"] for e in ge]
        assert titles == {e["title"] for e in ge if e["title"]}
        final = [e for e in out.get(f"streamtag.status.{name}") if e["final"]]
        assert len(final) == 1 and final[0]["dropped_samples"] == 0

    outage = out.get("streamtag.outage.a")
    assert outage[0]["state"] == "reconnecting" and outage[0]["outages"] == 1 and outage[0]["retry_in_s"] > 0
    assert outage[-1]["state"] == "connected" and outage[-1]["duration_s"] > 1.0
    assert {e["state"] for e in outage} <= {"reconnecting", "connected"}
    assert not out.get("streamtag.outage.b")
    final_a = [e for e in out.get("streamtag.status.a") if e["final"]][0]
    assert final_a["outages"] == 1 and final_a["last_error"]
    assert any(e["state"] == "reconnecting" for e in out.get("streamtag.status.a"))  # outage visible in the status

    rows = sqlite3.connect(log).execute("SELECT station, genre, start_wall, end_wall, title, state FROM segments "
                                        "ORDER BY id").fetchall()
    by = {name: [r for r in rows if r[0] == name] for name in "ab"}
    down = [r for r in by["a"] if r[1] == "outage"]
    assert len(down) == 1 and down[0][3] - down[0][2] > 1.0
    assert by["a"].index(down[0]) < len(by["a"]) - 1                     # tagging resumed after it
    assert {r[1] for r in by["b"]} <= {"classical", "jazz"} and all(r[5] == "closed" for r in rows)
    report = streamtag("report", log)
    assert report.returncode == 0 and "outage" in report.stdout and "classical" in report.stdout


def test_ridden_out_outage_then_bounded_retries_give_up(icecast, tmp_path, tiny_env):
    clip = write_clip(tmp_path / "rock.wav", "rock", 4.0)
    src = push(icecast, "r", clip)
    icecast.set_title("r", "x")
    t0 = time.monotonic()
    res = streamtag("listen", "--input", icecast.url("r"), "--no-tui", "--json", "--no-publish", "--model", "tiny",
                    "--retries", "2", env=tiny_env, timeout=60)
    src.wait(10)
    assert res.returncode == 1, res.stderr                            # it played, then gave up: runtime failure
    err = [line for line in res.stderr.splitlines() if line.startswith("streamtag: error:")]
    assert len(err) == 1 and "gave up after 2 reconnect attempts without audio" in err[0], res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    states = [e["state"] for e in lines if e["topic"] == events.OUTAGE]
    assert states == ["reconnecting", "reconnecting", "down"]           # the drop, 2 failed attempts (404)
    assert [e for e in lines if e["topic"] == events.GENRE]                # it tagged what it got
    assert time.monotonic() - t0 < 30
