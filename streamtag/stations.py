"""The ``streamtag monitor`` stations file: one ``[[station]]`` table per stream.

```toml
[[station]]
name = "jazz-fm"                          # letters, digits, '-' and '_': the topic suffix and log key
input = "http://radio.example:8000/jazz"  # URL, file, "-" (stdin) or left out for a device
vote = "soft"                             # optional per-station settings (STATION_KEYS)
```

Every other setting comes from the monitor's layered settings (defaults < config file ``[monitor]``
< environment < flags), which are also each station's defaults.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from .errors import UsageError
from .settings import ListenSettings, MonitorSettings, _coerce, _field_types, shard_of

STATION_KEYS = ("name", "input", "device", "rate", "channels", "format", "fast", "duration", "hop", "vote",
                "vote_window", "ema_alpha", "confirm", "silence_db", "speech_threshold", "min_confidence",
                "stall_timeout", "retries", "buffer_seconds")
"""Keys a ``[[station]]`` table may set (``name`` becomes the station's ``stream``)."""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Station names: they become ZeroMQ topic suffixes, metric labels and log keys."""


def load_stations(path: str | Path, base: MonitorSettings) -> list[ListenSettings]:
    """Every station of the file as its own :class:`ListenSettings` (``base`` + the table), in file order.

    Raises :class:`UsageError` (one line) for an unreadable file, unknown keys, bad values, missing or
    duplicate names.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: stations file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise UsageError(f"{path}: unreadable stations file ({reason})") from None
    unknown = set(data) - {"station"}
    if unknown:
        raise UsageError(f"{path}: unknown key {sorted(unknown)[0]!r} (expected [[station]] tables)")
    tables = data.get("station")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"{path}: no [[station]] tables")
    types_ = _field_types(ListenSettings)
    common = {f.name: getattr(base, f.name) for f in dataclasses.fields(ListenSettings)}
    out: list[ListenSettings] = []
    seen: set[str] = set()
    for i, table in enumerate(tables, 1):
        where = f"{path}: station {i}"
        name = table.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise UsageError(f"{where}: name must be 1-64 letters, digits, '-' or '_' (got {name!r})")
        if name in seen:
            raise UsageError(f"{where}: duplicate name {name!r}")
        seen.add(name)
        values = dict(common, stream=name)
        for key, value in table.items():
            if key not in STATION_KEYS:
                raise UsageError(f"{where} ({name}): unknown key {key!r}")
            if key != "name":
                values[key] = _coerce(key, value, types_[key], f"{where} ({name})")
        station = ListenSettings(**values)
        try:
            station.validate()
        except UsageError as exc:
            raise UsageError(f"{where} ({name}): {exc}") from None
        out.append(station)
    return out


def shard(stations: list[ListenSettings], spec: str) -> list[ListenSettings]:
    """Stations ``I, I+N, I+2N, ...`` (1-based, in file order) for ``spec`` = ``I/N``; all when empty."""
    if not spec:
        return stations
    i, n = shard_of(spec)
    return stations[i - 1::n]
