"""`streamtag tag` on real clips with the real model: JSON/CSV output, batching across files, bad files."""

import csv
import io

from clitools import assert_one_line_error, json_lines, streamtag, write_clip


def test_tag_json_right_genres_batched_across_files(tmp_path, real_model):
    files = [write_clip(tmp_path / f"{g}.wav", g, 8.0) for g in ("metal", "classical", "metal")]
    # batch 4 < 6 windows per file: batches straddle files
    r = streamtag("tag", *files, "--json", "--batch", "4", "--model", real_model)
    assert r.returncode == 0, r.stderr
    out = json_lines(r.stdout)
    assert [o["path"] for o in out] == [str(f) for f in files]      # path as given, input order
    assert [o["genre"] for o in out] == ["metal", "classical", "metal"]
    for o in out:
        assert set(o) == {"path", "genre", "confidence", "probs", "windows", "segments"}
        assert o["windows"] == 6                                     # 8 s, 3-s windows, 1-s hop
        assert abs(sum(o["probs"].values()) - 1) < 1e-3 and o["confidence"] == max(o["probs"].values())
        assert o["segments"][0]["start"] == 0.0 and o["segments"][-1]["end"] == 8.0
        assert all(a["end"] == b["start"] for a, b in zip(o["segments"], o["segments"][1:]))


def test_bad_file_is_reported_and_the_others_still_tagged(tmp_path, real_model):
    good = write_clip(tmp_path / "metal.wav", "metal", 4.0)
    missing = tmp_path / "missing.flac"
    r = streamtag("tag", missing, good, "--json", "--model", real_model)
    assert_one_line_error(r, 2, str(missing), "no such file")
    out = json_lines(r.stdout)
    assert out[0] == {"path": str(missing), "error": f"{missing}: no such file"}
    assert out[1]["path"] == str(good) and out[1]["genre"] == "metal"


def test_csv_and_human_output(tmp_path, tiny_env):
    f = write_clip(tmp_path / "jazz.wav", "jazz", 3.0)
    r = streamtag("tag", f, "--csv", "--model", "tiny", env=tiny_env)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][:4] == ["path", "genre", "confidence", "windows"] and len(rows[0]) == 14
    assert rows[1][0] == str(f) and rows[1][3] == "3"
    r = streamtag("tag", f, "--model", "tiny", env=tiny_env)
    assert r.returncode == 0 and r.stdout.startswith(f"{f}\t") and "(3 windows)" in r.stdout


def test_json_and_csv_together_is_a_usage_error(tmp_path):
    r = streamtag("tag", "x.wav", "--json", "--csv")
    assert_one_line_error(r, 2, "not allowed with")


def test_min_confidence_gives_unknown_on_a_real_clip(tmp_path):
    clip = write_clip(tmp_path / "jazz.wav", "jazz", 8.0)
    sure, unsure = (json_lines(streamtag("tag", clip, "--json", "--min-confidence", p).stdout)[0] for p in ("0", "0.99"))
    assert sure["genre"] == "jazz" and sure["confidence"] < 0.99       # the shipped default, calibrated
    assert unsure["genre"] == "unknown" and unsure["probs"] == sure["probs"]
    assert {s["genre"] for s in unsure["segments"]} == {"unknown"}
    listen = streamtag("listen", "--input", clip, "--fast", "--no-tui", "--json", "--no-publish",
                       "--min-confidence", "0.99")
    genres = [e["genre"] for e in json_lines(listen.stdout) if e["topic"] == "streamtag.genre"]
    assert listen.returncode == 0 and genres and set(genres) == {"unknown"}
