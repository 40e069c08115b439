"""`streamtag models` lists what is installed, from the metadata."""

import json

from clitools import streamtag


def test_models_lists_name_arch_labels_accuracy_size(tiny_env, real_model):
    r = streamtag("models", "--json", env=tiny_env)
    assert r.returncode == 0
    rows = {m["name"]: m for m in map(json.loads, r.stdout.splitlines())}
    assert rows["tiny"]["arch"] == "cnn" and rows["tiny"]["accuracy"] == {"cv_track_acc": 0.5}
    assert len(rows["tiny"]["labels"]) == 10 and rows["tiny"]["size_bytes"] > 1000
    assert rows[real_model]["labels"][6] == "metal" and rows[real_model]["accuracy"]
    assert "broken" in rows                               # listed: its metadata is fine, the graph is not
    human = streamtag("models", env=tiny_env)
    assert any(line.startswith("tiny ") and "cv_track_acc 0.500" in line for line in human.stdout.splitlines())
