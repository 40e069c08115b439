"""`streamtag tag --ray` on a local Ray instance with real clips: the same lines as `tag`, the same cache."""

import json

import pytest

from clitools import json_lines, streamtag, write_clip

pytest.importorskip("ray", reason="Ray is the optional extra streamtag[ray]")


def test_ray_actors_tag_like_tag_alone_and_share_its_cache(tmp_path, real_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i, genre in enumerate(("metal", "classical", "jazz", "reggae", "metal")):
        write_clip(lib / f"{i}-{genre}.wav", genre, 4.0, n=i)
    (lib / "broken.wav").write_bytes(b"RIFF" + bytes(60))
    alone = streamtag("tag", lib, "--json", "--model", real_model)
    db = tmp_path / "cache.sqlite"
    ray = streamtag("tag", lib, "--json", "--model", real_model, "--cache", db, "--ray", "--jobs", "2", timeout=240)
    assert ray.returncode == alone.returncode == 2, ray.stderr
    assert "Traceback" not in ray.stderr
    assert [line for line in ray.stderr.splitlines() if line.startswith("streamtag: error:")] == \
        [line for line in alone.stderr.splitlines() if line.startswith("streamtag: error:")]
    got, want = json_lines(ray.stdout), json_lines(alone.stdout)
    assert [o["path"] for o in got] == [o["path"] for o in want]
    for g, w in zip(got, want):
        assert g.keys() == w.keys() and g.get("genre") == w.get("genre") and g.get("segments") == w.get("segments")
        for k, p in w.get("probs", {}).items():
            assert abs(g["probs"][k] - p) < 1e-3
    again = streamtag("tag", lib, "--json", "--model", real_model, "--cache", db, "--ray")
    assert "(0 tagged, 5 from the cache, 1 failed)" in again.stderr
    assert [json.dumps(o, sort_keys=True) for o in json_lines(again.stdout)] == \
        [json.dumps(o, sort_keys=True) for o in got]
