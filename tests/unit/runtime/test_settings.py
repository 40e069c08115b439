"""Settings layering: defaults < config file < STREAMTAG_* env < CLI, with one-line errors."""

import pytest

from streamtag.errors import UsageError
from streamtag.settings import ListenSettings, TagSettings, load


@pytest.fixture
def config(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('hop = 0.5\nconfirm = 4\n\n[listen]\nvote = "soft"\npublish = "tcp://127.0.0.1:7000"\n\n'
                 '[tag]\nbatch = 8\n')
    return p


def test_defaults():
    s = load(ListenSettings, {}, env={})
    assert (s.hop, s.vote, s.confirm, s.publish, s.provider) == (1.0, "ema", 2, "tcp://127.0.0.1:5556", "auto")


def test_each_layer_overrides_the_one_below(config):
    env = {"STREAMTAG_CONFIRM": "6", "STREAMTAG_PUBLISH": ""}
    s = load(ListenSettings, {"hop": 2.0, "vote": None}, config=str(config), env=env)
    assert s.hop == 2.0            # CLI beats config
    assert s.vote == "soft"        # CLI None = not given: the [listen] table holds
    assert s.confirm == 6          # env beats config
    assert s.publish == ""         # env can switch publishing off
    t = load(TagSettings, {}, config=str(config), env={})
    assert (t.hop, t.batch, t.vote) == (0.5, 8, "ema")   # top-level keys reach both, [listen] does not


def test_user_config_is_found_through_xdg(tmp_path, monkeypatch, config):
    (tmp_path / "streamtag").mkdir()
    config.rename(tmp_path / "streamtag" / "config.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load(ListenSettings, {}, env={}).vote == "soft"


@pytest.mark.parametrize("text, needle", [
    ("hopp = 1\n", "unknown key 'hopp'"),
    ("[listen]\ncsv = true\n", "unknown key 'csv' in [listen]"),
    ("[server]\nx = 1\n", "unknown table [server]"),
    ("hop = 'fast'\n", "hop"),
    ("hop = \n", "unreadable config"),
])
def test_bad_config_is_a_one_line_usage_error(tmp_path, text, needle):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(UsageError, match=None) as e:
        load(ListenSettings, {}, config=str(p), env={})
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("env, needle", [
    ({"STREAMTAG_HOP": "abc"}, "STREAMTAG_HOP"),
    ({"STREAMTAG_FAST": "maybe"}, "STREAMTAG_FAST"),
    ({"STREAMTAG_HOP": "0.01"}, "at least 0.1"),
    ({"STREAMTAG_VOTE": "median"}, "vote"),
    ({"STREAMTAG_PROVIDER": "tpu"}, "provider"),
])
def test_bad_env_values(env, needle):
    with pytest.raises(UsageError) as e:
        load(ListenSettings, {}, env=env)
    assert needle in str(e.value)


def test_missing_explicit_config_and_conflicting_flags(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load(ListenSettings, {}, config=str(tmp_path / "nope.toml"), env={})
    with pytest.raises(UsageError, match="not both"):
        load(TagSettings, {"json": True, "csv": True}, env={})
    with pytest.raises(UsageError, match="not both"):
        load(ListenSettings, {"input": "x.wav", "device": "1"}, env={})


def test_shipped_example_config_is_valid():
    from pathlib import Path
    example = Path(__file__).resolve().parents[3] / "configs" / "streamtag.toml"
    assert load(ListenSettings, {}, config=str(example), env={}).publish == "tcp://127.0.0.1:5556"
    assert load(TagSettings, {}, config=str(example), env={}).batch == TagSettings.batch == 4


def test_radio_settings_layer_and_validate(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[monitor]\nretries = 5\nlog = "radio.db"\n\n[listen]\nstall_timeout = 3\n')
    from streamtag.settings import MonitorSettings
    m = load(MonitorSettings, {}, config=str(cfg), env={"STREAMTAG_METRICS_PORT": "9310"})
    assert (m.retries, m.log, m.metrics_port, m.stall_timeout) == (5, "radio.db", 9310, 10.0)
    assert load(ListenSettings, {}, config=str(cfg), env={"STREAMTAG_RETRIES": ""}).retries is None
    for bad, needle in [({"stall_timeout": 0.1}, "stall_timeout"), ({"retries": -1}, "retries"),
                        ({"log": "x.txt"}, "log x.txt"), ({"metrics_port": 70000}, "metrics_port"),
                        ({"speech_threshold": 0.0}, "speech_threshold")]:
        with pytest.raises(UsageError, match=needle):
            load(ListenSettings, bad, env={})
    with pytest.raises(UsageError, match="shard"):
        load(MonitorSettings, {"shard": "2/1"}, env={})
