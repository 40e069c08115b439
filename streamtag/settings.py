"""Run-time settings: one typed dataclass per command, layered defaults < config file < env < CLI.

Config file: ``--config PATH`` or ``$XDG_CONFIG_HOME/streamtag/config.toml`` (default
``~/.config/streamtag/config.toml``). Top-level keys apply to every command that has them;
``[listen]`` and ``[tag]`` tables apply to one command. Environment: ``STREAMTAG_<FIELD>`` (e.g.
``STREAMTAG_HOP=0.5``, ``STREAMTAG_PUBLISH=`` to disable publishing). Keys are the field names
below; unknown keys in a config file are an error.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError
from .sinks import DEFAULT_PUBLISH
from .vote import VOTE_MODES
from .windower import MIN_HOP_SECONDS

ENV_PREFIX = "STREAMTAG_"
PROVIDER_CHOICES = ("auto", "cuda", "cpu")
PCM_FORMATS = ("s16le", "f32le")
LOG_SUFFIXES = (".db", ".csv", ".jsonl")
"""Segment log formats, by file extension: SQLite, CSV, JSON lines."""


@dataclass
class CommonSettings:
    """Settings ``listen`` and ``tag`` share: model, windows and vote."""

    model: str | None = None
    """Model name (in ``models/`` or ``$STREAMTAG_MODELS``) or path to a ``.onnx``; None = ``models/DEFAULT``."""
    provider: str = "auto"
    """ONNX Runtime provider: ``auto`` (CUDA if available, else CPU), ``cuda`` or ``cpu``."""
    hop: float = 1.0
    """Seconds between window starts (window length comes from the model); at least 0.1."""
    vote: str = "ema"
    """Smoothing: ``ema`` (moving average of probabilities), ``soft`` (mean of the last ``vote_window``),
    ``hard`` (majority of the last ``vote_window`` argmaxes)."""
    vote_window: int = 5
    """Windows the ``soft`` and ``hard`` votes look back over."""
    ema_alpha: float = 0.4
    """Weight of the newest window in the ``ema`` vote (0 < alpha <= 1)."""
    confirm: int = 2
    """Hysteresis: a new genre is reported only after leading this many consecutive windows."""
    silence_db: float = -60.0
    """Windows with RMS below this many dBFS are reported as ``silence`` and reset the vote."""
    batch: int = 32
    """Most windows per ONNX run (when behind, in ``--fast`` mode and in ``tag``)."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        if self.provider not in PROVIDER_CHOICES:
            raise UsageError(f"provider {self.provider!r}: expected one of {', '.join(PROVIDER_CHOICES)}")
        if not self.hop >= MIN_HOP_SECONDS:
            raise UsageError(f"hop {self.hop}: must be at least {MIN_HOP_SECONDS} s")
        if self.vote not in VOTE_MODES:
            raise UsageError(f"vote {self.vote!r}: expected one of {', '.join(VOTE_MODES)}")
        if self.vote_window < 1 or self.confirm < 1 or self.batch < 1:
            raise UsageError("vote_window, confirm and batch must be at least 1")
        if not 0 < self.ema_alpha <= 1:
            raise UsageError(f"ema_alpha {self.ema_alpha}: must be in (0, 1]")


@dataclass
class ListenSettings(CommonSettings):
    """``streamtag listen``: one live stream tagged window by window."""

    input: str | None = None
    """Audio file path, ``http(s)://`` URL, ``-`` for raw PCM on stdin, or None for an input device."""
    device: str | None = None
    """Input device name or index (see ``streamtag devices``); None = the default input."""
    rate: int | None = None
    """Sample rate of stdin PCM (default 44100) or capture rate for a device (default: the device's)."""
    channels: int | None = None
    """Channels of stdin PCM (default 1) or to capture from a device (default: up to 2)."""
    format: str = "s16le"
    """Raw PCM sample format on stdin: ``s16le`` or ``f32le``."""
    fast: bool = False
    """Read a file/URL as fast as the model runs instead of in real time."""
    duration: float | None = None
    """Stop after this many seconds of audio; None = until the end of the input or Ctrl-C."""
    publish: str = DEFAULT_PUBLISH
    """ZeroMQ PUB address to bind; empty = do not publish."""
    tui: bool = True
    """Show the terminal UI when stdout is a terminal (else print to the console)."""
    json: bool = False
    """Console output as one JSON object per line (genre, change and status events)."""
    stream: str = ""
    """Stream name in events; empty = derived from the source (``mic:default``, file name, ``stdin``, URL)."""
    status_interval: float = 5.0
    """Seconds between ``streamtag.status`` events."""
    buffer_seconds: float = 20.0
    """Capture ring-buffer capacity in seconds of input audio."""
    stall_timeout: float = 10.0
    """Seconds a network input may deliver no audio before it is reopened."""
    retries: int | None = None
    """Most reconnect attempts in a row that bring no audio before a network input gives up (exit 1);
    None = retry forever (a stream that plays again resets the count)."""
    speech_threshold: float = 0.6
    """A window whose ``speech`` probability is at least this is talk; ``confirm`` talk windows in a row
    are reported as ``speech`` (models with a speech output only)."""
    log: str = ""
    """Segment log file: ``.db`` (SQLite), ``.csv`` or ``.jsonl``; empty = no log."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this TCP port; None = off."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics server binds (``0.0.0.0`` in a container)."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        super().validate()
        if self.format not in PCM_FORMATS:
            raise UsageError(f"format {self.format!r}: expected one of {', '.join(PCM_FORMATS)}")
        if self.rate is not None and not 1000 <= self.rate <= 768000:
            raise UsageError(f"rate {self.rate}: expected 1000..768000 Hz")
        if self.channels is not None and not 1 <= self.channels <= 64:
            raise UsageError(f"channels {self.channels}: expected 1..64")
        if self.duration is not None and not self.duration > 0:
            raise UsageError(f"duration {self.duration}: must be positive")
        if not self.status_interval > 0 or not self.buffer_seconds >= 1:
            raise UsageError("status_interval must be positive and buffer_seconds at least 1")
        if self.input is not None and self.device is not None:
            raise UsageError("give --input or --device, not both")
        if not 0.5 <= self.stall_timeout <= 3600:
            raise UsageError(f"stall_timeout {self.stall_timeout}: expected 0.5..3600 s")
        if self.retries is not None and not 0 <= self.retries <= 1_000_000:
            raise UsageError(f"retries {self.retries}: expected 0..1000000")
        if not 0 < self.speech_threshold <= 1:
            raise UsageError(f"speech_threshold {self.speech_threshold}: must be in (0, 1]")
        if self.log and Path(self.log).suffix.lower() not in LOG_SUFFIXES:
            raise UsageError(f"log {self.log}: expected a {', '.join(LOG_SUFFIXES)} file")
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise UsageError(f"metrics_port {self.metrics_port}: expected 1..65535")


@dataclass
class MonitorSettings(ListenSettings):
    """``streamtag monitor``: these settings are every station's defaults; a ``[[station]]`` table
    overrides the per-station ones (see :mod:`streamtag.stations`)."""

    shard: str = ""
    """``I/N``: run only stations I, I+N, I+2N, ... (1-based, in file order) of the stations file; empty = all."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        super().validate()
        if self.shard:
            shard_of(self.shard)


def shard_of(spec: str) -> tuple[int, int]:
    """Parse ``I/N`` (1 <= I <= N) into ``(I, N)``."""
    i, sep, n = spec.partition("/")
    if not (sep and i.strip().isdigit() and n.strip().isdigit()) or not 1 <= int(i) <= int(n):
        raise UsageError(f"shard {spec!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return int(i), int(n)


@dataclass
class TagSettings(CommonSettings):
    """``streamtag tag``: whole files, one result per file."""

    json: bool = False
    """One JSON object per file per line."""
    csv: bool = False
    """CSV with a header: path, genre, confidence, windows, one column per label."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        super().validate()
        if self.json and self.csv:
            raise UsageError("give --json or --csv, not both")


SECTIONS = {ListenSettings: "listen", TagSettings: "tag", MonitorSettings: "monitor"}
"""Config-file table of each command."""


def config_path(explicit: str | None) -> Path | None:
    """The config file to read: ``explicit`` (must exist) or the per-user one if present."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise UsageError(f"{explicit}: config file not found")
        return p
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    p = base / "streamtag" / "config.toml"
    return p if p.is_file() else None


def _field_types(cls: type) -> dict[str, type]:
    """Each field's value type (``X | None`` -> ``X``)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        if isinstance(hint, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        out[name] = hint
    return out


def _coerce(name: str, value: Any, typ: type, where: str) -> Any:
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            raise ValueError
        if typ is int and (isinstance(value, bool) or isinstance(value, float)):
            raise ValueError
        if typ is float and isinstance(value, bool):
            raise ValueError
        return typ(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: {name} = {value!r} is not a valid {typ.__name__}") from None


def _from_config(cls: type, path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: unreadable config ({exc})") from None
    all_names = {f.name for c in SECTIONS for f in fields(c)}
    names = _field_types(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SECTIONS.values():
                raise UsageError(f"{path}: unknown table [{key}] (expected [listen], [tag] or [monitor])")
            continue
        if key not in all_names:
            raise UsageError(f"{path}: unknown key {key!r}")
        if key in names:
            out[key] = _coerce(key, value, names[key], str(path))
    for key, value in data.get(SECTIONS[cls], {}).items():
        if key not in names:
            raise UsageError(f"{path}: unknown key {key!r} in [{SECTIONS[cls]}]")
        out[key] = _coerce(key, value, names[key], str(path))
    return out


def _from_env(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    types_ = _field_types(cls)
    for f in fields(cls):
        var = ENV_PREFIX + f.name.upper()
        if var in env:
            value = env[var]
            out[f.name] = None if f.default is None and value == "" else _coerce(f.name, value, types_[f.name], var)
    return out


def load(cls: type, cli: Mapping[str, Any], config: str | None = None,
         env: Mapping[str, str] | None = None):
    """Build and validate ``cls`` from defaults < config file < ``STREAMTAG_*`` env < ``cli`` (None = not given)."""
    values: dict[str, Any] = {}
    path = config_path(config)
    if path:
        values.update(_from_config(cls, path))
    values.update(_from_env(cls, os.environ if env is None else env))
    values.update({k: v for k, v in cli.items() if v is not None})
    settings = cls(**values)
    settings.validate()
    return settings
