"""`streamtag tag` on a music library: folders, --jobs, the results cache, --write-tags, --segments-out,
progress, files whose headers lie, and the command line overriding the config's output format."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
import sys

import mutagen
import numpy as np
import pytest
import soundfile as sf

from clitools import REPO, assert_one_line_error, cli_env, gtzan_track, json_lines, streamtag, write_clip


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A small library of real clips: nested folders, several formats, a hidden file and a text file."""
    d = tmp_path_factory.mktemp("library")
    (d / "rock" / "live").mkdir(parents=True)
    write_clip(d / "metal.wav", "metal", 4.0)
    write_clip(d / "rock" / "a.flac", "rock", 4.0)
    x, r = sf.read(gtzan_track("jazz"), dtype="float32", frames=22050 * 4)
    sf.write(d / "rock" / "live" / "b.mp3", x, r)
    sf.write(d / "rock" / "c.ogg", x, r)
    write_clip(d / "rock" / ".hidden.wav", "rock", 4.0)
    (d / "notes.txt").write_text("not audio")
    return d


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("streamtag: error:")]


def test_folders_are_walked_for_audio_files_and_glob_picks_others(library, tmp_path, tiny_env):
    r = streamtag("tag", library, "--json", "--model", "tiny", env=tiny_env)
    assert r.returncode == 0, r.stderr
    assert [o["path"] for o in json_lines(r.stdout)] == [
        str(library / p) for p in ("metal.wav", "rock/a.flac", "rock/c.ogg", "rock/live/b.mp3")]
    r = streamtag("tag", library, "--glob", "rock/*.[fm]*", "--json", "--model", "tiny", env=tiny_env)
    assert [o["path"] for o in json_lines(r.stdout)] == [str(library / "rock/a.flac"), str(library / "rock/live/b.mp3")]
    (tmp_path / "empty").mkdir()
    r = streamtag("tag", tmp_path / "empty", library / "metal.wav", "--model", "tiny", env=tiny_env)
    assert_one_line_error(r, 2, "empty: no files with an audio extension")
    assert r.stdout.startswith(f"{library / 'metal.wav'}\t")


def test_parallel_decode_gives_the_same_results_in_input_order(library, tiny_env):
    one = streamtag("tag", library, "--json", "--model", "tiny", "--batch", "3", env=tiny_env)
    two = streamtag("tag", library, "--json", "--model", "tiny", "--batch", "3", "--jobs", "3", env=tiny_env)
    assert one.returncode == two.returncode == 0 and one.stdout == two.stdout


def test_second_run_is_served_from_the_cache_until_content_or_settings_change(library, tmp_path, tiny_env):
    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    db = tmp_path / "results.sqlite"
    first = streamtag("tag", lib, "--csv", "--model", "tiny", "--cache", db, env=tiny_env)
    assert first.returncode == 0 and "(4 tagged, 0 from the cache, 0 failed)" in first.stderr
    second = streamtag("tag", lib, "--csv", "--model", "tiny", "--cache", db, env=tiny_env)
    assert "(0 tagged, 4 from the cache, 0 failed)" in second.stderr and second.stdout == first.stdout
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 4
    shutil.copy(lib / "rock" / "a.flac", lib / "copy.flac")      # same content, new path: a cache hit
    write_clip(lib / "metal.wav", "metal", 4.0, offset=12.0)       # new content: tagged again
    third = streamtag("tag", lib, "--json", "--model", "tiny", "--cache", db, env=tiny_env)
    assert "(1 tagged, 4 from the cache, 0 failed)" in third.stderr
    hop = streamtag("tag", lib / "copy.flac", "--hop", "0.5", "--model", "tiny", "--cache", db, env=tiny_env)
    assert "(1 tagged, 0 from the cache" in hop.stderr


def test_write_tags_dry_run_then_write_then_cached(library, tmp_path, real_model):
    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    files = [lib / "metal.wav", lib / "rock/a.flac", lib / "rock/c.ogg", lib / "rock/live/b.mp3"]
    before = [f.read_bytes() for f in files]
    dry = streamtag("tag", lib, "--write-tags", "--dry-run", "--model", real_model)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.count("would write GENRE=") == 4 and [f.read_bytes() for f in files] == before
    db = tmp_path / "c.sqlite"
    wrote = streamtag("tag", lib, "--write-tags", "--json", "--model", real_model, "--cache", db)
    assert wrote.returncode == 0 and wrote.stderr.count(": wrote GENRE=") == 4
    genres = {o["path"]: o["genre"] for o in json_lines(wrote.stdout)}
    assert genres[str(lib / "metal.wav")] == "metal"
    for f in files:
        tags = mutagen.File(f).tags
        if "TCON" in tags:                                         # ID3 (mp3, wav)
            genre, comments = tags["TCON"].text[0], [c.text[0] for c in tags.getall("COMM")]
        else:                                                      # Vorbis comments (flac, ogg)
            genre, comments = tags["GENRE"][0], tags["COMMENT"]
        assert genre.lower().replace("-", "") == genres[str(f)]
        assert comments == [f"streamtag: {genres[str(f)]} " + comments[0].split(" ", 2)[2]]
        assert sf.info(f).frames > 0                              # still decodes
    again = streamtag("tag", lib, "--write-tags", "--model", real_model, "--cache", db)
    assert "(0 tagged, 4 from the cache" in again.stderr and again.stderr.count("tags already say") == 4


def test_segments_out_csv_audacity_cue_reach_the_end_of_the_file(tmp_path, real_model):
    metal, _ = sf.read(gtzan_track("metal", 1), dtype="float32")
    classical, r = sf.read(gtzan_track("classical", 1), dtype="float32")
    mixed = np.concatenate([metal[5 * r:15 * r], classical[5 * r:int(15.5 * r)]])      # 20.5 s, hop 1
    sf.write(tmp_path / "mix.flac", mixed, r)
    out = tmp_path / "segments"
    res = streamtag("tag", tmp_path / "mix.flac", "--json", "--segments-out", out, "--model", real_model)
    assert res.returncode == 0, res.stderr
    o = json_lines(res.stdout)[0]
    assert o["windows"] == 19                     # 18 hop-aligned windows + one ending at 20.5 s
    segs = o["segments"]
    assert segs[-1]["end"] == 20.5 and [s["genre"] for s in segs] == ["metal", "classical"]
    rows = list(csv.DictReader((out / "mix.flac.csv").open()))
    assert [(float(x["start"]), float(x["end"]), x["genre"]) for x in rows] == \
        [(s["start"], s["end"], s["genre"]) for s in segs]
    labels = [line.split("\t") for line in (out / "mix.flac.txt").read_text().splitlines()]
    assert [(float(a), float(b), g) for a, b, g in labels] == [(s["start"], s["end"], s["genre"]) for s in segs]
    cue = (out / "mix.flac.cue").read_text()
    assert f'FILE "{tmp_path / "mix.flac"}" WAVE' in cue and cue.count("TRACK") == 2
    change = segs[1]["start"]
    assert f"INDEX 01 00:{int(change):02d}:{round((change % 1) * 75):02d}" in cue


@pytest.fixture(scope="module")
def liars(tmp_path_factory):
    """Files whose headers lie: a FLAC claiming 2**36 - 1 samples, a WAV at 1 Hz, a WAV claiming 65535 channels."""
    d = tmp_path_factory.mktemp("liars")
    src = write_clip(d / "src.flac", "metal", 3.0)
    raw = bytearray(src.read_bytes())
    field_at = 8 + 10                                 # STREAMINFO body; sample rate, channels, bits, 36-bit total
    v = int.from_bytes(raw[field_at:field_at + 8], "big") | ((1 << 36) - 1)
    raw[field_at:field_at + 8] = v.to_bytes(8, "big")
    (d / "huge.flac").write_bytes(bytes(raw))
    noise = (np.random.default_rng(0).standard_normal(44100) * 3000).astype("<i2")
    sf.write(d / "rate1.wav", noise, 1, subtype="PCM_16")
    wav = bytearray((d / "rate1.wav").read_bytes())
    wav[22:24], wav[24:28] = (65535).to_bytes(2, "little"), (44100).to_bytes(4, "little")
    (d / "channels.wav").write_bytes(bytes(wav))
    return d


def test_files_whose_headers_lie_each_give_one_line_and_the_run_goes_on(liars, tmp_path, real_model):
    good = write_clip(tmp_path / "good.wav", "metal", 4.0)
    names = ["huge.flac", "rate1.wav", "channels.wav"]
    r = streamtag("tag", *(liars / n for n in names), good, "--json", "--model", real_model)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    out = json_lines(r.stdout)
    assert [o["path"] for o in out] == [str(liars / n) for n in names] + [str(good)]
    assert out[-1]["genre"] == "metal"
    assert "sample rate 1 Hz" in out[1]["error"]
    errors = _errors(r.stderr)
    assert len(errors) == sum("error" in o for o in out) >= 2
    for o in out[:3]:
        assert "error" in o or o["windows"] >= 1      # a liar is either refused in one line or tagged for what it holds


def test_progress_plain_lines_and_a_bar_on_a_terminal(library, tiny_env):
    r = streamtag("tag", library, "--model", "tiny", env={**tiny_env, "STREAMTAG_PROGRESS_INTERVAL": "0.001"})
    lines = [line for line in r.stderr.splitlines() if line.startswith("streamtag: ")]
    assert any("/4 files · " in line and "× real time · ETA" in line for line in lines), r.stderr
    assert lines[-1].startswith("streamtag: 4 files (4 tagged, 0 from the cache, 0 failed), 0.00 h of audio in ")
    assert lines[-1].endswith("× real time")
    cmd = f"{sys.executable} -m streamtag tag {library} --model tiny >/dev/null"
    term = subprocess.run(["script", "-qec", cmd, "/dev/null"], env={**cli_env(tiny_env), "COLUMNS": "100"},
                          capture_output=True, timeout=60, cwd=REPO)
    screen = term.stdout.decode()
    assert term.returncode == 0, screen
    assert "\r\x1b[K[" in screen and "█" in screen and "4/4 files" in screen


def test_command_line_overrides_the_configured_output_format(tmp_path, tiny_env):
    f = write_clip(tmp_path / "jazz.wav", "jazz", 3.0)
    conf = tmp_path / "config.toml"
    conf.write_text("[tag]\njson = true\n")
    r = streamtag("tag", f, "--csv", "--config", conf, "--model", "tiny", env=tiny_env)
    assert r.returncode == 0, r.stderr
    assert list(csv.reader(io.StringIO(r.stdout)))[0][:2] == ["path", "genre"]
    r = streamtag("tag", f, "--no-json", "--config", conf, "--model", "tiny", env=tiny_env)
    assert r.stdout.startswith(f"{f}\t")
    r = streamtag("tag", f, "--csv", "--model", "tiny", env={**tiny_env, "STREAMTAG_JSON": "1"})
    assert r.returncode == 0 and r.stdout.startswith("path,genre")
    r = streamtag("tag", f, "--model", "tiny", env={**tiny_env, "STREAMTAG_JSON": "1"})
    assert json.loads(r.stdout)["path"] == str(f)


@pytest.mark.parametrize("what", ["not-a-database", "a-folder", "missing-folder"])
def test_an_unusable_cache_is_one_line_before_any_work(what, tmp_path, tiny_env):
    f = write_clip(tmp_path / "jazz.wav", "jazz", 3.0)
    cache = {"not-a-database": tmp_path / "x.sqlite", "a-folder": tmp_path,
             "missing-folder": tmp_path / "no" / "x"}[what]
    if what == "not-a-database":
        cache.write_bytes(b"garbage" * 200)
    r = streamtag("tag", f, "--cache", cache, "--model", "tiny", env=tiny_env)
    assert_one_line_error(r, 2, str(cache))
    assert r.stdout == ""
