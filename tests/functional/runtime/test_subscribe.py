"""A real `streamtag subscribe` process receives what `streamtag listen --fast` publishes over ZeroMQ."""

import jsonschema

from clitools import free_port, json_lines, streamtag, streamtag_popen, write_clip
from streamtag import events


def test_subscriber_process_receives_every_window_and_the_final_status(tmp_path, real_model):
    clip = write_clip(tmp_path / "metal.wav", "metal", 10.0)
    addr = f"tcp://127.0.0.1:{free_port()}"
    sub = streamtag_popen("subscribe", "--connect", addr, "--until-final")
    changes = streamtag_popen("subscribe", "--connect", addr, "--topic", events.CHANGE, "--count", "1")
    try:
        assert "subscribed to" in sub.stderr.readline()  # socket is up; it reconnects every 20 ms until listen binds
        assert "subscribed to" in changes.stderr.readline()
        r = streamtag("listen", "--input", clip, "--fast", "--no-tui", "--json", "--publish", addr,
                      "--model", real_model)
        assert r.returncode == 0, r.stderr
        out, err = sub.communicate(timeout=20)
        change_out, _ = changes.communicate(timeout=20)
    finally:
        sub.kill()
        changes.kill()
    assert changes.returncode == 0
    (first_change,) = json_lines(change_out)
    assert first_change["topic"] == events.CHANGE and first_change["previous"] is None
    assert sub.returncode == 0, err
    got = json_lines(out)
    local = [e for e in json_lines(r.stdout) if e["topic"] == events.GENRE]
    genre = [e for e in got if e["topic"] == events.GENRE]
    assert [e["seq"] for e in genre] == [e["seq"] for e in local] == list(range(8))
    assert [e["genre"] for e in genre] == [e["genre"] for e in local]
    assert genre[-1]["genre"] == "metal"
    assert got[-1]["topic"] == events.STATUS and got[-1]["final"] and got[-1]["dropped_samples"] == 0
    assert any(e["topic"] == events.LEVEL for e in got)
    schema = events.schema()
    for e in got:
        topic = e.pop("topic")
        jsonschema.validate(e, {"$ref": f"#/$defs/{topic}", "$defs": schema["$defs"]})
