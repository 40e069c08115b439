"""Second audit, cases issue 11 did not list (each docstring says what was wrong before the fix)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
import time

import pytest
import zmq

from clitools import free_port
from hostile import check, finish, music, patch, popen, run_cli, wav
from streamtag import events

LISTEN = ("listen", "--fast", "--no-tui", "--json", "--no-publish", "--model", "tiny")


@pytest.fixture(scope="module")
def ok_wav(tmp_path_factory):
    return wav(tmp_path_factory.mktemp("audit") / "ok.wav", music(2.0))


def test_ipv6_publish_address_works(capfd, tiny_env, ok_wav):
    """``tcp://[::1]:PORT`` failed with "No such device": ZeroMQ sockets need IPV6 switched on."""
    addr = f"tcp://[::1]:{free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.IPV6, 1)
    sub.setsockopt(zmq.RECONNECT_IVL, 20)
    sub.setsockopt_string(zmq.SUBSCRIBE, "")
    sub.connect(addr)
    got = []
    reader = threading.Thread(target=lambda: got.append(sub.recv_string()) if sub.poll(20000) else None)
    reader.start()
    try:
        argv = [a for a in LISTEN if a not in ("--fast", "--no-publish")]
        r = run_cli(capfd, *argv, "--input", ok_wav, "--publish", addr)      # real time: the SUB joins in time
        reader.join()
    finally:
        sub.close(0)
        ctx.term()
    check(r, 0)
    assert got and got[0].startswith("streamtag.")


def test_metadata_that_is_a_fifo_or_huge_is_refused_without_reading(capfd, monkeypatch, tiny_models, tmp_path):
    """A FIFO named ``<model>.json`` made ``streamtag models`` (and any use of the model) hang forever."""
    shutil.copy(tiny_models / "tiny.onnx", tmp_path / "fifo.onnx")
    os.mkfifo(tmp_path / "fifo.json")
    shutil.copy(tiny_models / "tiny.onnx", tmp_path / "huge.onnx")
    with open(tmp_path / "huge.json", "wb") as f:
        f.truncate(17 << 20)                                          # sparse: 17 MiB of nothing
    os.mkfifo(tmp_path / "pipe.onnx")                                 # a FIFO as the graph: not a model file
    monkeypatch.setenv("STREAMTAG_MODELS", str(tmp_path))
    r = run_cli(capfd, "models", "--json")
    check(r, 2, "fifo.json: model metadata must be a regular file", "huge.json", "pipe", errors=3, bound=10)
    check(run_cli(capfd, "tag", "x.wav", "--model", "fifo"), 2, "regular file", bound=10)


def test_huge_integer_in_metrics_does_not_break_models(capfd, monkeypatch, tiny_models, tmp_path):
    """A 400-digit accuracy in the metrics raised OverflowError (float()) and killed the listing."""
    shutil.copy(tiny_models / "tiny.onnx", tmp_path / "big.onnx")
    meta = json.loads((tiny_models / "tiny.json").read_text())
    (tmp_path / "big.json").write_text(json.dumps({**meta, "name": "big"})[:-1] + ', "metrics": {"acc": ' +
                                       "9" * 400 + "}}")
    monkeypatch.setenv("STREAMTAG_MODELS", str(tmp_path))
    r = run_cli(capfd, "models", "--json")
    check(r, 0)
    (big,) = [o for o in r.lines if o["name"] == "big"]
    assert big["accuracy"] is None


def test_nul_byte_in_a_configured_input_is_one_line(capfd, tiny_env, tmp_path):
    """``input = "a\\u0000b"`` in a config file reached os.stat and crashed with a ValueError traceback."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[listen]\ninput = "a\\u0000b.wav"\n')
    check(run_cli(capfd, *LISTEN, "--config", cfg), 2, "not a valid file name")


def test_name_the_locale_cannot_encode_is_escaped(tiny_env, ok_wav, tmp_path):
    """With an ASCII stdout (LANG=C, PYTHONIOENCODING=ascii) a non-ASCII file name crashed the human output."""
    p = tmp_path / "ünï.wav"
    shutil.copy(ok_wav, p)
    t0 = time.monotonic()
    r = finish(popen("tag", p, "--model", "tiny", env={**tiny_env, "PYTHONIOENCODING": "ascii"}), t0, 60)
    check(r, 0, jsonl=False)
    assert "\\xfcn\\xef.wav\t" in r.out


def test_file_name_too_long_and_symlink_to_a_device(capfd, tiny_env, tmp_path):
    """Both are one line: ENAMETOOLONG, and a symlink to /dev/zero (stat follows links: not a regular file)."""
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    r = run_cli(capfd, "tag", tmp_path / ("a" * 5000 + ".wav"), tmp_path / "zero.wav", "--model", "tiny")
    check(r, 2, "File name too long", "not a regular file", errors=2, bound=10, jsonl=False)


def test_csv_path_with_newline_and_comma_stays_one_record(capfd, tiny_env, ok_wav, tmp_path):
    """The CSV writer quotes a path with a newline or comma: one record per file, readable back."""
    p = tmp_path / 'odd,\n"name".wav'
    shutil.copy(ok_wav, p)
    r = run_cli(capfd, "tag", p, "--csv", "--model", "tiny")
    check(r, 0, jsonl=False)
    rows = list(csv.reader(io.StringIO(r.out)))
    assert len(rows) == 2 and rows[1][0] == str(p)


def test_tiny_duration_is_rejected_not_misreported(capfd, tiny_env, ok_wav):
    """``--duration 1e-6`` rounded to 0 samples and was reported as "no audio samples"; now bounded 0.01..1e7 s."""
    check(run_cli(capfd, *LISTEN, "--input", ok_wav, "--duration", "1e-6"), 2, "duration 1e-06")
    r = run_cli(capfd, *LISTEN, "--input", ok_wav, "--duration", "0.01")
    check(r, 0)
    assert [e["t_end"] for e in r.events(events.GENRE)] == [0.01]     # zero-padded to one window


def test_wav_header_with_65535_channels(capfd, tiny_env, tmp_path, ok_wav):
    """An absurd channel count in the header is refused by the decoder, in one line."""
    bad = patch(wav(tmp_path / "c.wav", music(1.0)), 22, "<H", 65535)
    check(run_cli(capfd, *LISTEN, "--input", bad), 2, "cannot decode audio")


def test_until_final_needs_a_real_boolean(capfd):
    """A rogue ``"final": "yes"`` (truthy, not true) stopped ``subscribe --until-final`` early."""
    from test_hostile_zmq import Rogue, _event
    with Rogue([[_event(final="yes", stream="fake")], [_event(final=True, stream="real")]]) as rogue:
        r = run_cli(capfd, "subscribe", "--connect", rogue.address, "--until-final")
    assert r.code == 0 and r.lines[-1]["stream"] == "real"


@pytest.mark.parametrize("argv, env, needle", [
    (["--stream", "s" * 10000], {}, "stream name"),
    ([], {"STREAMTAG_PUBLISH": "ipc://"}, "ipc://PATH"),
])
def test_more_bad_settings(capfd, monkeypatch, tiny_env, ok_wav, argv, env, needle):
    """A 10-KB stream name travelled in every event; ``ipc://`` with no path reached ZeroMQ."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    base = [a for a in LISTEN if a != "--no-publish" or not env]
    check(run_cli(capfd, *base, "--input", ok_wav, *argv), 2, needle)


def test_config_that_is_a_fifo_does_not_block(capfd, tiny_env, ok_wav, tmp_path):
    """``--config`` on a FIFO with no writer must not block reading it."""
    os.mkfifo(tmp_path / "cfg.toml")
    check(run_cli(capfd, *LISTEN, "--input", ok_wav, "--config", tmp_path / "cfg.toml"), 2, "config file not found",
          bound=10)
