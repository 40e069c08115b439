"""``streamtag listen | monitor | tag | subscribe | report | proxy | devices | models``.

Exit codes: 0 ok (also after Ctrl-C/SIGTERM/SIGHUP stopped ``listen``, ``monitor``, ``subscribe`` or ``proxy`` cleanly,
and when stdout's reader went away), 2 usage or bad input, 1 runtime failure (also an interrupted
``tag``, ``models`` or ``devices``). Every :class:`~streamtag.errors.StreamtagError` is one line
on stderr. Module-level imports stay light: :func:`main` installs the stop-signal handlers
(:mod:`streamtag.signals`) before numpy, ZeroMQ or ONNX Runtime are imported.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import os
import sys
from typing import Callable, Iterator, Sequence

from . import __version__, signals
from .errors import OutputClosed, RuntimeFailure, StreamtagError, UsageError, one_line

PROG = "streamtag"
MAX_FRAME_BYTES = 1 << 20
"""``subscribe`` drops a publisher that sends a bigger message (ZeroMQ's MAXMSGSIZE)."""


def _say(msg: str) -> None:
    """One line on stderr; a broken stderr is ignored (the exit code still tells)."""
    try:
        print(one_line(msg), file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):
        pass


def _error(msg: str) -> None:
    _say(f"{PROG}: error: {msg}")


def _out(line: str) -> None:
    from .sinks import write_line
    write_line(sys.stdout, line)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _common(p: argparse.ArgumentParser, cfg) -> None:
    p.add_argument("--config", metavar="PATH", help="TOML config file (default ~/.config/streamtag/config.toml)")
    p.add_argument("--model", "-m", metavar="M", help="model name in models/ or path to a .onnx (default: models/DEFAULT)")
    p.add_argument("--provider", choices=cfg.PROVIDER_CHOICES, help="ONNX Runtime provider (default auto: CUDA if available)")
    p.add_argument("--hop", type=float, metavar="S", help="seconds between windows (default 1.0; 0.1..3600)")
    p.add_argument("--vote", choices=cfg.VOTE_MODES, help="smoothing of window probabilities (default ema)")
    p.add_argument("--vote-window", type=int, metavar="N", help="windows for soft/hard votes (default 5)")
    p.add_argument("--ema-alpha", type=float, metavar="A", help="weight of the newest window in the ema vote (default 0.4)")
    p.add_argument("--confirm", type=int, metavar="N", help="windows a new genre must lead before it is reported (default 2)")
    p.add_argument("--silence-db", type=float, metavar="DB", help="RMS dBFS below which a window is silence (default -60)")
    p.add_argument("--min-confidence", type=float, metavar="P", help="report 'unknown' below this smoothed "
                   "confidence, 0..1 (default 0: off)")
    p.add_argument("--batch", type=int, metavar="N", help="most windows per model run (default: listen 32, tag 4)")


def _live(p: argparse.ArgumentParser, default_publish: str) -> None:
    """Options ``listen`` and ``monitor`` share: outputs, network inputs, talk, log, metrics."""
    pub = p.add_mutually_exclusive_group()
    pub.add_argument("--publish", metavar="ADDR", help=f"ZeroMQ PUB address (default {default_publish})")
    pub.add_argument("--no-publish", dest="publish", action="store_const", const="", help="do not publish")
    p.add_argument("--no-tui", dest="tui", action="store_false", default=None, help="print to the console")
    p.add_argument("--status-interval", type=float, metavar="S", help="seconds between status events (default 5)")
    p.add_argument("--stall-timeout", type=float, metavar="S",
                   help="reopen a network input after S seconds without audio (default 10; 0.5..3600)")
    p.add_argument("--retries", type=int, metavar="N", help="give up (exit 1) after N reconnect attempts in a row "
                   "without audio (default: retry forever)")
    p.add_argument("--speech-threshold", type=float, metavar="P",
                   help="speech probability from which a window is talk (default 0.6; above 0 .. 1)")
    p.add_argument("--log", metavar="PATH", help="segment log: .db (SQLite), .csv or .jsonl")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus metrics on port N")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is None so the settings layers can tell what was given)."""
    from . import settings as cfg
    from .settings import DEFAULT_PUBLISH
    parser = _Parser(prog=PROG, description="Streaming music-genre tagger: live audio in, genre events out.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lp = sub.add_parser("listen", help="tag a live stream (device, file, stdin, URL) window by window")
    _common(lp, cfg)
    lp.add_argument("--input", "-i", metavar="PATH|URL|-", help="audio file, http(s)/icecast URL or - for raw PCM "
                    "on stdin (default: the input device)")
    lp.add_argument("--device", "-d", metavar="NAME|INDEX", help="input device (see `streamtag devices`)")
    lp.add_argument("--rate", type=int, metavar="HZ", help="stdin PCM rate (default 44100) or device capture rate")
    lp.add_argument("--channels", type=int, metavar="N", help="stdin PCM channels (default 1) or device channels")
    lp.add_argument("--format", choices=cfg.PCM_FORMATS, help="stdin PCM sample format (default s16le)")
    lp.add_argument("--fast", action="store_true", default=None, help="read files/URLs as fast as possible")
    lp.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    lp.add_argument("--stream", metavar="NAME", help="stream name in events (default: from the source)")
    _live(lp, DEFAULT_PUBLISH)
    lp.add_argument("--json", action="store_true", default=None, help="console output as JSON lines")
    lp.add_argument("--no-json", dest="json", action="store_false", help="human console lines (overrides the config)")

    mo = sub.add_parser("monitor", help="tag many stations in one process (one shared model worker)")
    _common(mo, cfg)
    mo.add_argument("stations", metavar="STATIONS.toml", help="stations file: one [[station]] table per stream")
    mo.add_argument("--shard", metavar="I/N", help="run only stations I, I+N, I+2N, ... (1-based)")
    mo.add_argument("--fast", action="store_true", default=None, help="read file stations as fast as possible")
    mo.add_argument("--duration", type=float, metavar="S", help="stop each station after S seconds of audio")
    _live(mo, DEFAULT_PUBLISH)

    tp = sub.add_parser("tag", help="tag audio files and folders (one result per file)")
    _common(tp, cfg)
    tp.add_argument("files", nargs="+", metavar="FILE|DIR", help="audio files; folders are walked recursively")
    fmt = tp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", default=None, help="one JSON object per file per line")
    fmt.add_argument("--csv", action="store_true", default=None, help="CSV with a header row")
    fmt.add_argument("--no-json", dest="json", action="store_false", help="tab-separated lines (overrides the config)")
    tp.add_argument("--glob", metavar="PATTERN", help="in folders, tag files whose path below the folder matches "
                    "PATTERN (default: every audio extension)")
    tp.add_argument("--jobs", "-j", type=int, metavar="N",
                    help="files decoded in parallel (default 1); with --ray: actors")
    tp.add_argument("--cache", metavar="PATH", help="SQLite results cache: skip files already tagged")
    tp.add_argument("--write-tags", action="store_true", default=None,
                    help="write the genre and a confidence comment into the files' tags (ID3, Vorbis, MP4)")
    tp.add_argument("--dry-run", action="store_true", default=None, help="with --write-tags: change nothing, say what")
    tp.add_argument("--segments-out", metavar="DIR", help="write per-file segments as CSV, Audacity labels and CUE")
    tp.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                    help="no progress on stderr")
    tp.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                    help="run on Ray: a local instance, or the cluster at ADDRESS (put it after the files)")

    sp = sub.add_parser("subscribe", help="print events from a running `streamtag listen` as JSON lines")
    sp.add_argument("--connect", default=DEFAULT_PUBLISH, metavar="ADDR", help=f"publisher address (default {DEFAULT_PUBLISH})")
    sp.add_argument("--topic", action="append", metavar="T", help="topic prefix to receive (repeatable; default all)")
    sp.add_argument("--count", type=int, metavar="N", help="exit after N events")
    sp.add_argument("--until-final", action="store_true", help="exit after the publisher's final status event")

    rp = sub.add_parser("report", help="airtime per station and genre from a segment log")
    rp.add_argument("log", metavar="LOG", help="segment log written by --log (.db, .csv or .jsonl)")
    rp.add_argument("--since", metavar="TIME", help="from this time (ISO 8601, UTC unless an offset is given, "
                    "or unix seconds)")
    rp.add_argument("--until", metavar="TIME", help="up to this time (same forms)")
    rp.add_argument("--csv", action="store_true", help="CSV: station,genre,seconds,share")

    xp = sub.add_parser("proxy", help="join several publishers (e.g. monitor shards) into one ZeroMQ feed")
    xp.add_argument("--connect", action="append", required=True, metavar="ADDR",
                    help="a publisher's address (repeatable)")
    xp.add_argument("--publish", default=DEFAULT_PUBLISH, metavar="ADDR",
                    help=f"address subscribers connect to (default {DEFAULT_PUBLISH})")

    sub.add_parser("devices", help="list audio input devices")
    mp = sub.add_parser("models", help="list installed models")
    mp.add_argument("--json", action="store_true", help="one JSON object per model per line")
    return parser


def _fields(args: argparse.Namespace, cls: type) -> dict:
    names = {f for f in cls.__dataclass_fields__}
    return {k: v for k, v in vars(args).items() if k in names}


def _add_outputs(p, s) -> None:
    """The segment log and the metrics server of ``listen``/``monitor`` settings ``s``, when asked for."""
    if s.log:
        from .seglog import SegmentLog
        p.add_sink(SegmentLog(s.log))
    if s.metrics_port is not None:
        from .metrics import MetricsSink
        p.add_sink(MetricsSink(s.metrics_port, s.metrics_host))


def _use_tui(s) -> bool:
    return s.tui and not s.json and sys.stdout.isatty() and importlib.util.find_spec("streamtag.tui") is not None


def _run_console(p, what: Callable[[], str]) -> None:
    """Start ``p``, say what runs on stderr, wait for the end or a stop signal (then stop cleanly)."""
    try:
        with signals.armed():
            p.start()
            pub = f"; publishing on {p.publish_address}" if p.publish_address else ""
            _say(f"{PROG}: {what()} -> model {p.meta.name} on {p.provider}{pub}")
            while not p.wait(0.2):
                pass
    except KeyboardInterrupt:
        p.stop()


def cmd_listen(args: argparse.Namespace) -> int:
    """Run the live pipeline until the input ends, ``--duration`` passes, or a stop signal."""
    from . import settings as cfg
    from .pipeline import Pipeline
    from .sinks import ConsoleSink

    s = cfg.load(cfg.ListenSettings, _fields(args, cfg.ListenSettings), args.config)
    if _use_tui(s):
        from . import tui
        with signals.armed():  # a signal that came during start-up ends the run before the screen opens
            p = Pipeline(s)
            _add_outputs(p, s)
        return tui.run(p)
    p = Pipeline(s, [ConsoleSink(json_lines=s.json)])
    _add_outputs(p, s)
    _run_console(p, lambda: p.source_description)
    if p.error is not None:
        raise p.error
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """Tag every station of the stations file (or of its shard) until they end or a stop signal.

    A station that fails is reported on stderr and the others go on; the exit code is then the worst
    of the failed stations' (1, or 2 for a bad input).
    """
    from . import settings as cfg
    from .pipeline import Pipeline
    from .sinks import ConsoleSink
    from .stations import load_stations, shard

    s = cfg.load(cfg.MonitorSettings, _fields(args, cfg.MonitorSettings), args.config)
    stations = shard(load_stations(args.stations, s), s.shard)
    if not stations:
        raise UsageError(f"shard {s.shard}: no stations in {args.stations}")
    use_tui = _use_tui(s)
    with signals.armed():
        p = Pipeline(s, [] if use_tui else [ConsoleSink(json_lines=True)], stations=stations)
        _add_outputs(p, s)
    if use_tui:
        from . import tui
        tui.run_monitor(p)
    else:
        shard_note = f" (shard {s.shard})" if s.shard else ""
        _run_console(p, lambda: f"monitoring {len(stations)} stations{shard_note}")
    for name, err in p.failed:
        _error(f"station {name}: {err}")
    if p.failed:
        return max(err.exit_code for _, err in p.failed)
    if p.error is not None:  # the pipeline itself failed (an output, the model)
        raise p.error
    return 0


def _human_tag_line(r) -> str:
    return f"{one_line(r.path)}\t{r.genre}\t{r.confidence:.2f}\t({r.windows} windows)"


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag files and folders; bad files are reported and the rest still tagged (exit 2 if any failed)."""
    from . import settings as cfg
    from .cache import ResultCache, model_key
    from .modelmeta import resolve_model
    from .progress import Progress
    from .tagger import after_result, find_files, tag_engine, tag_files

    s = cfg.load(cfg.TagSettings, _fields(args, cfg.TagSettings), args.config)
    jobs = find_files(args.files, s.glob)
    onnx, meta = resolve_model(s.model)
    cache = ResultCache(s.cache) if s.cache else None
    key = model_key(onnx, meta, s) if cache is not None else ""
    labels = meta.labels
    worst = 0
    try:
        with signals.armed():
            if s.csv:
                _out(_csv_row(["path", "genre", "confidence", "windows", *labels]))
            progress = Progress(len(jobs), sum(j.size for j in jobs), interval=s.progress_interval,
                                enabled=s.progress)
            if s.ray:
                from .distributed import tag_on_ray
                results = tag_on_ray(jobs, s, cache=cache, model_key=key, progress=progress)
            else:
                results = tag_files(jobs, s, tag_engine(s), cache=cache, model_key=key, progress=progress)
            for job, r in zip(jobs, results):
                progress.clear_line()
                if r.error is None:
                    try:
                        notes = after_result(r, job, s, model=meta.name, cache=cache, model_key=key)
                    except StreamtagError as exc:
                        r.error = exc
                    else:
                        for note in notes:
                            _say(f"{PROG}: {note}")
                if r.error is not None:
                    _error(str(r.error))
                    worst = max(worst, r.error.exit_code)
                if s.json:
                    _out(json.dumps(r.to_dict(), allow_nan=False))
                elif r.error is not None:
                    continue
                elif s.csv:
                    _out(_csv_row([r.path, r.genre, f"{r.confidence:.4f}", r.windows,
                                   *(f"{r.probs.get(k, 0.0):.4f}" for k in labels)]))
                else:
                    _out(_human_tag_line(r))
            progress.close()
    except KeyboardInterrupt:
        raise RuntimeFailure("interrupted; the files not shown above were not tagged") from None
    finally:
        if cache is not None:
            cache.close()
    return worst


def _csv_row(fields: list) -> str:
    """One CSV record (quoted as needed; a field with a newline stays one record), without the line end."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def cmd_subscribe(args: argparse.Namespace) -> int:
    """Print each well-formed event as a JSON line with its ``topic``; skip malformed messages, counting them."""
    import zmq

    from . import events, strictjson
    from .settings import check_address
    from .sinks import zmq_socket

    if args.count is not None and args.count < 1:
        raise UsageError(f"--count {args.count}: must be at least 1")
    check_address(args.connect, "--connect")
    ctx = zmq.Context()
    sock = zmq_socket(ctx, zmq.SUB, args.connect)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 20)  # catch a publisher soon after it binds (short --fast runs)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    try:
        sock.connect(args.connect)
    except zmq.ZMQError as exc:
        sock.close()
        ctx.term()
        raise UsageError(f"cannot connect to {args.connect}: {exc.strerror}") from None
    for t in args.topic or [""]:
        sock.setsockopt_string(zmq.SUBSCRIBE, t)
    _say(f"{PROG}: subscribed to {args.connect} ({', '.join(args.topic or ['all topics'])})")
    # ZeroMQ never reconnects after a protocol error (a message over MAXMSGSIZE): reconnect ourselves
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    n = skipped = 0
    try:
        with signals.armed():
            while args.count is None or n < args.count:
                ready = dict(poller.poll(200))
                if monitor in ready:
                    monitor.recv_multipart()
                    sock.disconnect(args.connect)
                    sock.connect(args.connect)
                if sock not in ready:
                    continue
                frames = sock.recv_multipart()
                try:
                    if len(frames) != 1:
                        raise events.BadFrame(f"{len(frames)}-part message")
                    topic, event = events.decode(frames[0])
                    if event.get("v") != events.SCHEMA_VERSION:
                        raise events.BadFrame(f"not a v{events.SCHEMA_VERSION} event")
                except events.BadFrame as exc:
                    skipped += 1
                    if skipped == 1:
                        _say(f"{PROG}: skipping malformed messages from {args.connect} (first: {exc})")
                    continue
                body = {k: v for k, v in event.items() if k != "topic"}
                _out(strictjson.dumps({"topic": topic, **body}))
                n += 1
                if args.until_final and events.base_topic(topic) == events.STATUS and event.get("final") is True:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
        ctx.term()
        if skipped:
            _say(f"{PROG}: skipped {skipped} malformed message{'s' if skipped > 1 else ''}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print airtime per station and genre (seconds and share) for the period, from a segment log."""
    from .seglog import airtime, parse_time, read_rows

    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError("--until must be after --since")
    with signals.armed():
        table = airtime(read_rows(args.log), since, until)
        if args.csv:
            _out(_csv_row(["station", "genre", "seconds", "share"]))
        elif not table:
            _say("no segments in this period")
        for station in sorted(table):
            genres = table[station]
            total = sum(genres.values())
            if not args.csv:
                _out(one_line(f"{station}  ({_hms(total)} logged)"))
            for genre, secs in sorted(genres.items(), key=lambda kv: (-kv[1], kv[0])):
                if args.csv:
                    _out(_csv_row([station, genre, f"{secs:.1f}", f"{secs / total:.4f}"]))
                else:
                    _out(one_line(f"  {genre:<12} {_hms(secs):>10}  {100 * secs / total:5.1f} %"))
    return 0


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def cmd_proxy(args: argparse.Namespace) -> int:
    """Forward every event from ``--connect`` publishers to subscribers of ``--publish`` until a stop signal."""
    import threading

    from .proxy import Proxy
    from .settings import check_address

    for address in args.connect:
        check_address(address, "--connect")
    check_address(args.publish, "--publish")
    proxy = Proxy(args.connect, args.publish)
    try:
        with signals.armed():
            proxy.start()
            _say(f"{PROG}: proxy {', '.join(args.connect)} -> {args.publish}")
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """List input devices (index, name, channels, default rate; * = default input)."""
    with signals.armed():
        try:
            import sounddevice as sd
            devices = sd.query_devices()
            default_in = sd.default.device[0]
        except OSError as exc:
            raise RuntimeFailure(f"PortAudio unavailable ({exc})") from None
        found = False
        for d in devices:
            if d["max_input_channels"] > 0:
                found = True
                mark = "*" if d["index"] == default_in else " "
                _out(one_line(f"{mark} {d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
                              f"{d['default_samplerate']:.0f} Hz)"))
        if not found:
            _say("no input devices")
    return 0


def _number(v) -> float | None:
    """``v`` as a finite float, or None (booleans, huge integers and non-numbers are not figures)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _accuracies(metrics: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every accuracy figure in the (nested) metrics as (dotted key, value); ``{"mean": x}`` counts as x."""
    for k, v in metrics.items():
        if isinstance(v, dict) and "acc" in k.lower() and _number(v.get("mean")) is not None:
            yield f"{prefix}{k}", _number(v["mean"])
        elif isinstance(v, dict):
            yield from _accuracies(v, f"{prefix}{k}.")
        elif "acc" in k.lower() and _number(v) is not None:
            yield f"{prefix}{k}", _number(v)


def _accuracy(metrics: dict) -> tuple[str, float] | None:
    """The headline accuracy: a test-track figure if there is one, else a track figure, else the first."""
    found = list(_accuracies(metrics))
    for want in ("test_track", "track_acc", ""):
        for key, value in found:
            if want in key:
                return key, value
    return None


def cmd_models(args: argparse.Namespace) -> int:
    """List installed models: name, arch, labels, accuracy from the metadata, size.

    A model whose metadata is broken gets one ``streamtag: error:`` line (and with ``--json`` a
    ``{"name", "error"}`` line); the others are still listed and the exit code is 2.
    """
    from .modelmeta import installed_models, resolve_model

    worst = 0
    with signals.armed():
        names = installed_models()
        if not names:
            _say("no models installed (see models/ or $STREAMTAG_MODELS)")
        for name in names:
            try:
                path, meta = resolve_model(name)
                size = path.stat().st_size
            except (UsageError, OSError) as exc:
                msg = f"model {name}: {exc if isinstance(exc, UsageError) else exc.strerror}"
                _error(msg)
                worst = 2
                if args.json:
                    _out(json.dumps({"name": name, "error": msg}))
                continue
            acc = _accuracy(meta.metrics)
            if args.json:
                _out(json.dumps({"name": name, "arch": meta.arch, "labels": list(meta.labels),
                                 "accuracy": None if acc is None else {acc[0]: acc[1]}, "size_bytes": size,
                                 "path": str(path)}))
            else:
                acc_s = "accuracy n/a" if acc is None else f"{acc[0]} {acc[1]:.3f}"
                size_s = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
                _out(one_line(f"{name:<24} {meta.arch:<18} {acc_s:<44} {size_s:>9}  "
                              f"labels: {', '.join(meta.labels)}"))
    return worst


COMMANDS = {"listen": cmd_listen, "monitor": cmd_monitor, "tag": cmd_tag, "subscribe": cmd_subscribe,
            "report": cmd_report, "proxy": cmd_proxy, "devices": cmd_devices, "models": cmd_models}
STOPPABLE = ("listen", "monitor", "subscribe", "proxy")
"""Commands a stop signal ends normally (exit 0); any other command it cuts short (exit 1)."""


def _own_stdio() -> Callable[[], None]:
    """Make standard I/O safe for the run; returns a function undoing the Python-level part.

    A closed fd 0/1/2 is reopened on /dev/null (output to a closed stdout is discarded, and no
    file or socket opened later can land on those numbers). ``sys.stderr`` writes through a
    duplicate of fd 2, so :func:`streamtag.cstderr.quiet_c_stderr` never swallows streamtag's own lines.
    """
    for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, flags)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    saved = sys.stdin, sys.stdout, sys.stderr
    if sys.stdin is None:
        sys.stdin = open(0, closefd=False)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)
    try:  # a name the locale cannot encode (LANG=C, PYTHONIOENCODING=ascii) is escaped, not an error
        sys.stdout.reconfigure(errors="backslashreplace")
    except (AttributeError, ValueError):
        pass
    try:
        if sys.stderr is None or sys.stderr.fileno() == 2:
            sys.stderr = open(os.dup(2), "w", buffering=1, errors="backslashreplace")
        quiet = sys.stderr.fileno() != 2
    except (AttributeError, OSError, ValueError):  # a replaced stderr without a file descriptor (tests)
        quiet = False
    from .cstderr import quiet_decoders
    quiet_decoders(quiet)

    def restore() -> None:
        _settle_stdout()
        quiet_decoders(False)
        if sys.stderr is not saved[2]:
            sys.stderr.close()
        sys.stdin, sys.stdout, sys.stderr = saved
    return restore


def _settle_stdout() -> None:
    """Flush stdout; if that fails, point fd 1 at /dev/null so the exit-time flush cannot print a traceback."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


def _where(exc: BaseException) -> str:
    """``module.py:line`` of the innermost streamtag frame of ``exc``'s traceback, for bug reports."""
    where = "?"
    tb = exc.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if os.sep + "streamtag" + os.sep in path:
            where = f"{os.path.basename(path)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one command and return its exit code."""
    restore_signals = signals.install()
    restore_stdio = _own_stdio()
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return COMMANDS[command](args)
    except OutputClosed:  # `| head`: the reader has what it wanted
        return 0
    except StreamtagError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:  # a stop signal outside a command's own handling (e.g. while parsing)
        if command in STOPPABLE:
            return 0
        _error("interrupted")
        return 1
    except Exception as exc:  # a bug: still one line (with where it happened), never a traceback
        _error(f"internal error: {type(exc).__name__}: {exc} ({_where(exc)})")
        return 1
    finally:
        restore_stdio()
        restore_signals()


if __name__ == "__main__":
    sys.exit(main())
