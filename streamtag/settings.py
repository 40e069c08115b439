"""Run-time settings: one typed dataclass per command, layered defaults < config file < env < CLI.

Config file: ``--config PATH`` or ``$XDG_CONFIG_HOME/streamtag/config.toml`` (default
``~/.config/streamtag/config.toml``). Top-level keys apply to every command that has them;
``[listen]`` and ``[tag]`` tables apply to one command. Environment: ``STREAMTAG_<FIELD>`` (e.g.
``STREAMTAG_HOP=0.5``, ``STREAMTAG_PUBLISH=`` to disable publishing). Keys are the field names
below; unknown keys in a config file are an error (in any table, whichever command reads it).

Every numeric setting has bounds (:data:`BOUNDS`); a value outside them, NaN or infinite is a
:class:`~streamtag.errors.UsageError` (one line, exit code 2).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError

ENV_PREFIX = "STREAMTAG_"
MIN_RATE, MAX_RATE = 1000, 768000
"""Sample rates accepted from a file header, ``--rate`` or a device (Hz)."""
MIN_HOP_SECONDS = 0.1
"""Smallest hop ``--hop`` accepts."""
MAX_HOP_SECONDS = 3600.0
"""Largest hop ``--hop`` accepts (a hop longer than the window leaves unanalysed gaps between windows)."""
VOTE_MODES = ("ema", "soft", "hard")
"""``--vote`` choices (:class:`streamtag.vote.Vote`)."""
DEFAULT_PUBLISH = "tcp://127.0.0.1:5556"
"""Default ``--publish`` address."""
_TCP = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):([0-9]{1,5})")
PROVIDER_CHOICES = ("auto", "cuda", "cpu")
PCM_FORMATS = ("s16le", "f32le")
LOG_SUFFIXES = (".db", ".csv", ".jsonl")
"""Segment log formats, by file extension: SQLite, CSV, JSON lines."""


def check_address(address: str, what: str) -> None:
    """Raise :class:`UsageError` unless ``address`` is ``tcp://HOST:PORT`` (port 1..65535) or ``ipc://PATH``.

    ZeroMQ itself would bind port 99999 as a random port, or ignore junk after the port.
    """
    m = _TCP.fullmatch(address)
    if m and 1 <= int(m.group(2)) <= 65535:
        return
    if address.startswith("ipc://") and len(address) > 6 and address.isprintable():
        return
    raise UsageError(f"{what} {address!r}: expected tcp://HOST:PORT (port 1..65535) or ipc://PATH")


BOUNDS: dict[str, tuple[float, float, str]] = {
    "hop": (MIN_HOP_SECONDS, MAX_HOP_SECONDS, " s"),
    "vote_window": (1, 1000, ""),
    "ema_alpha": (0, 1, ""),  # 0 itself excluded
    "confirm": (1, 1000, ""),
    "silence_db": (-200, 0, " dBFS"),
    "batch": (1, 256, ""),
    "rate": (MIN_RATE, MAX_RATE, " Hz"),
    "channels": (1, 64, ""),
    "duration": (0.01, 1e7, " s"),
    "status_interval": (0.1, 86400, " s"),
    "buffer_seconds": (1, 300, " s"),
    "stall_timeout": (0.5, 3600, " s"),
    "retries": (0, 1_000_000, ""),
    "speech_threshold": (0, 1, ""),  # 0 itself excluded
    "metrics_port": (1, 65535, ""),
    "min_confidence": (0, 1, ""),
}
"""Inclusive ``(low, high, unit)`` of every numeric setting (``ema_alpha`` and ``speech_threshold`` exclude 0)."""
_OPEN_LOW = {"ema_alpha", "speech_threshold"}
MAX_STREAM_NAME = 200
"""Longest ``--stream`` name (it travels in every event)."""


def check_bounds(settings: object) -> None:
    """Raise :class:`UsageError` for any numeric field of ``settings`` outside :data:`BOUNDS` (None = unset)."""
    for name, (lo, hi, unit) in BOUNDS.items():
        v = getattr(settings, name, None)
        if v is None:
            continue
        low_ok = v > lo if name in _OPEN_LOW else v >= lo
        if not (math.isfinite(v) and low_ok and v <= hi):
            low = f"above {lo:.10g}" if name in _OPEN_LOW else f"at least {lo:.10g}"
            raise UsageError(f"{name} {v!r}: must be {low} and at most {hi:.10g}{unit}")


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
    min_confidence: float = 0.0
    """Report ``unknown`` while the smoothed confidence of the leading genre is below this (a file in
    ``tag``: its calibrated file-level confidence); 0 = always name a genre."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        if self.provider not in PROVIDER_CHOICES:
            raise UsageError(f"provider {self.provider!r}: expected one of {', '.join(PROVIDER_CHOICES)}")
        if self.vote not in VOTE_MODES:
            raise UsageError(f"vote {self.vote!r}: expected one of {', '.join(VOTE_MODES)}")
        check_bounds(self)


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
        if self.publish:
            check_address(self.publish, "publish")
        if len(self.stream) > MAX_STREAM_NAME or not self.stream.isprintable():
            raise UsageError(f"stream name: at most {MAX_STREAM_NAME} printable characters")
        if self.input is not None and self.device is not None:
            raise UsageError("give --input or --device, not both")
        if self.log and Path(self.log).suffix.lower() not in LOG_SUFFIXES:
            raise UsageError(f"log {self.log}: expected a {', '.join(LOG_SUFFIXES)} file")


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
    """``streamtag tag``: files and folders, one result per file."""

    batch: int = 4
    """Most windows per ONNX run, across files. Small: ``tag`` runs one batch per core at once, each
    holding its own intermediate tensors, and on CPU a bigger batch is no faster (30 gtzan-mini files,
    two lanes: batch 4 / 8 / 16 took 2.4 / 2.5 / 2.8 s with a peak RSS of 175 / 230 / 355 MiB for
    ``audioset-zeroshot``, 5.3 / 5.6 / 5.9 s and 213 / 283 / 464 MiB for ``fusion``). On a GPU raise it."""
    json: bool = False
    """One JSON object per file per line."""
    csv: bool = False
    """CSV with a header: path, genre, confidence, windows, one column per label."""
    glob: str | None = None
    """In folders, tag the files whose path below the folder matches this pattern (``*`` crosses ``/``)
    instead of every file with an audio extension."""
    jobs: int = 1
    """Files decoded in parallel (one engine batches their windows); with ``ray``: actors."""
    cache: str | None = None
    """SQLite results cache: files already tagged (same content, model and settings) are not decoded again."""
    write_tags: bool = False
    """Write the genre (and a confidence comment) into each file's own tags (ID3, Vorbis, MP4)."""
    dry_run: bool = False
    """With ``write_tags``: say what would be written, change no file."""
    segments_out: str | None = None
    """Folder for per-file segment files: CSV, Audacity labels and a CUE sheet."""
    progress: bool = True
    """Progress on stderr: a bar on a terminal, else a line every ``progress_interval`` seconds."""
    progress_interval: float = 10.0
    """Seconds between plain progress lines (stderr not a terminal)."""
    ray: str | None = None
    """Run on Ray: ``local`` starts (or joins) a Ray instance on this machine, else a cluster address."""

    EXCLUSIVE = (("json", "csv"),)
    """Flags of which one given on the command line clears the others from lower layers."""

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range values."""
        super().validate()
        if self.json and self.csv:
            raise UsageError("give --json or --csv, not both")
        if not 1 <= self.jobs <= 256:
            raise UsageError(f"jobs {self.jobs}: expected 1..256")
        if not self.progress_interval > 0:
            raise UsageError(f"progress_interval {self.progress_interval}: must be positive")
        if self.dry_run and not self.write_tags:
            raise UsageError("--dry-run goes with --write-tags")
        if self.glob == "":
            raise UsageError("glob: empty pattern")


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
        if typ is str and not isinstance(value, str):
            raise TypeError
        return typ(value)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{where}: {name} = {value!r} is not a valid {typ.__name__}") from None


def _from_config(cls: type, path: Path) -> dict[str, Any]:
    """``cls``'s values from the config file; the whole file is checked (keys and types of every table)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise UsageError(f"{path}: unreadable config ({reason})") from None
    all_types = {name: typ for c in SECTIONS for name, typ in _field_types(c).items()}
    own = _field_types(cls)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SECTIONS.values():
                raise UsageError(f"{path}: unknown table [{key}] (expected [listen], [tag] or [monitor])")
            continue
        if key not in all_types:
            raise UsageError(f"{path}: unknown key {key!r}")
        value = _coerce(key, value, all_types[key], str(path))
        if key in own:
            out[key] = value
    for section_cls, section in SECTIONS.items():
        types_ = _field_types(section_cls)
        for key, value in data.get(section, {}).items():
            if key not in types_:
                raise UsageError(f"{path}: unknown key {key!r} in [{section}]")
            value = _coerce(key, value, types_[key], f"{path} [{section}]")
            if section_cls is cls:
                out[key] = value
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
    given = {k: v for k, v in cli.items() if v is not None}
    for group in getattr(cls, "EXCLUSIVE", ()):
        if any(given.get(k) for k in group):
            values.update({k: False for k in group})
    values.update(given)
    settings = cls(**values)
    settings.validate()
    return settings
