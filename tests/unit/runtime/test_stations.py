"""The monitor's stations file: per-station settings over the monitor's, validation, sharding."""

import pytest

from streamtag.errors import UsageError
from streamtag.settings import MonitorSettings, load
from streamtag.stations import load_stations, shard


def test_stations_inherit_the_monitor_settings_and_override_their_own(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[[station]]\nname = "jazz-fm"\ninput = "http://r/jazz"\nvote = "soft"\nretries = 3\n\n'
                 '[[station]]\nname = "b_2"\ninput = "b.flac"\n')
    base = load(MonitorSettings, {"hop": 0.5, "stall_timeout": 4.0}, env={})
    a, b = load_stations(f, base)
    assert (a.stream, a.input, a.vote, a.retries, a.hop, a.stall_timeout) == ("jazz-fm", "http://r/jazz", "soft", 3,
                                                                             0.5, 4.0)
    assert (b.stream, b.vote, b.retries) == ("b_2", "ema", None)


def test_bad_values_name_the_station(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[[station]]\nname = "ok"\n\n[[station]]\nname = "x"\nconfirm = 0\n')
    with pytest.raises(UsageError, match=r"station 2 \(x\): confirm 0: must be at least 1"):
        load_stations(f, MonitorSettings())


def test_shards_split_in_file_order():
    names = list("abcdefg")
    assert shard(names, "1/3") == ["a", "d", "g"] and shard(names, "3/3") == ["c", "f"] and shard(names, "") == names
    for bad in ("0/3", "4/3", "1/0", "x", "1/2/3"):
        with pytest.raises(UsageError, match="shard"):
            shard(names, bad)
