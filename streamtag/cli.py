"""``streamtag listen | monitor | tag | subscribe | report | proxy | devices | models``.

Exit codes: 0 ok (also after Ctrl-C/SIGTERM stopped ``listen`` cleanly), 2 usage or bad input,
1 runtime failure. Every :class:`~streamtag.errors.StreamtagError` is one line on stderr.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import signal
import sys
from contextlib import contextmanager
from typing import Iterator, Sequence

from . import events, settings as cfg
from .errors import RuntimeFailure, StreamtagError, UsageError
from .sinks import DEFAULT_PUBLISH
from .vote import VOTE_MODES

PROG = "streamtag"


def _error(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage problem as one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH", help="TOML config file (default ~/.config/streamtag/config.toml)")
    p.add_argument("--model", "-m", metavar="M", help="model name in models/ or path to a .onnx (default: models/DEFAULT)")
    p.add_argument("--provider", choices=cfg.PROVIDER_CHOICES, help="ONNX Runtime provider (default auto: CUDA if available)")
    p.add_argument("--hop", type=float, metavar="S", help="seconds between windows (default 1.0, min 0.1)")
    p.add_argument("--vote", choices=VOTE_MODES, help="smoothing of window probabilities (default ema)")
    p.add_argument("--vote-window", type=int, metavar="N", help="windows for soft/hard votes (default 5)")
    p.add_argument("--ema-alpha", type=float, metavar="A", help="weight of the newest window in the ema vote (default 0.4)")
    p.add_argument("--confirm", type=int, metavar="N", help="windows a new genre must lead before it is reported (default 2)")
    p.add_argument("--silence-db", type=float, metavar="DB", help="RMS dBFS below which a window is silence (default -60)")
    p.add_argument("--batch", type=int, metavar="N", help="most windows per model run (default 32)")


def _live(p: argparse.ArgumentParser) -> None:
    """Options ``listen`` and ``monitor`` share: outputs, network inputs, talk, log, metrics."""
    pub = p.add_mutually_exclusive_group()
    pub.add_argument("--publish", metavar="ADDR", help=f"ZeroMQ PUB address (default {DEFAULT_PUBLISH})")
    pub.add_argument("--no-publish", dest="publish", action="store_const", const="", help="do not publish")
    p.add_argument("--no-tui", dest="tui", action="store_false", default=None, help="print to the console")
    p.add_argument("--status-interval", type=float, metavar="S", help="seconds between status events (default 5)")
    p.add_argument("--stall-timeout", type=float, metavar="S",
                   help="reopen a network input after S seconds without audio (default 10)")
    p.add_argument("--retries", type=int, metavar="N", help="give up (exit 1) after N reconnect attempts in a row "
                   "without audio (default: retry forever)")
    p.add_argument("--speech-threshold", type=float, metavar="P",
                   help="speech probability from which a window is 'speech' (default 0.5)")
    p.add_argument("--log", metavar="PATH", help="segment log: .db (SQLite), .csv or .jsonl")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus metrics on port N")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is None so the settings layers can tell what was given)."""
    parser = _Parser(prog=PROG, description="Streaming music-genre tagger: live audio in, genre events out.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lp = sub.add_parser("listen", help="tag a live stream (device, file, stdin, URL) window by window")
    _common(lp)
    lp.add_argument("--input", "-i", metavar="PATH|URL|-", help="audio file, http(s)/icecast URL or - for raw PCM "
                    "on stdin (default: the input device)")
    lp.add_argument("--device", "-d", metavar="NAME|INDEX", help="input device (see `streamtag devices`)")
    lp.add_argument("--rate", type=int, metavar="HZ", help="stdin PCM rate (default 44100) or device capture rate")
    lp.add_argument("--channels", type=int, metavar="N", help="stdin PCM channels (default 1) or device channels")
    lp.add_argument("--format", choices=cfg.PCM_FORMATS, help="stdin PCM sample format (default s16le)")
    lp.add_argument("--fast", action="store_true", default=None, help="read files/URLs as fast as possible")
    lp.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    lp.add_argument("--stream", metavar="NAME", help="stream name in events (default: from the source)")
    _live(lp)
    lp.add_argument("--json", action="store_true", default=None, help="console output as JSON lines")

    mo = sub.add_parser("monitor", help="tag many stations in one process (one shared model worker)")
    _common(mo)
    mo.add_argument("stations", metavar="STATIONS.toml", help="stations file: one [[station]] table per stream")
    mo.add_argument("--shard", metavar="I/N", help="run only stations I, I+N, I+2N, ... (1-based)")
    mo.add_argument("--fast", action="store_true", default=None, help="read file stations as fast as possible")
    mo.add_argument("--duration", type=float, metavar="S", help="stop each station after S seconds of audio")
    _live(mo)

    tp = sub.add_parser("tag", help="tag audio files (one result per file)")
    _common(tp)
    tp.add_argument("files", nargs="+", metavar="FILE")
    fmt = tp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", default=None, help="one JSON object per file per line")
    fmt.add_argument("--csv", action="store_true", default=None, help="CSV with a header row")

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


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so both stop a command the same clean way."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _fields(args: argparse.Namespace, cls: type) -> dict:
    names = {f for f in cls.__dataclass_fields__}
    return {k: v for k, v in vars(args).items() if k in names}


def _add_outputs(p, s: cfg.ListenSettings) -> None:
    """The segment log and the metrics server, when asked for."""
    if s.log:
        from .seglog import SegmentLog
        p.add_sink(SegmentLog(s.log))
    if s.metrics_port is not None:
        from .metrics import MetricsSink
        p.add_sink(MetricsSink(s.metrics_port, s.metrics_host))


def _run_console(p, what: str) -> None:
    """Start ``p``, say what runs on stderr, wait for the end or Ctrl-C/SIGTERM (then stop cleanly)."""
    with _sigterm_as_interrupt():
        try:
            p.start()
            pub = f"; publishing on {p.publish_address}" if p.publish_address else ""
            print(f"{PROG}: {what()} -> model {p.meta.name} on {p.provider}{pub}", file=sys.stderr, flush=True)
            while not p.wait(0.2):
                pass
        except KeyboardInterrupt:
            p.stop()


def _use_tui(s: cfg.ListenSettings) -> bool:
    return s.tui and not s.json and sys.stdout.isatty() and importlib.util.find_spec("streamtag.tui") is not None


def cmd_listen(args: argparse.Namespace) -> int:
    """Run the live pipeline until the input ends, ``--duration`` passes, or Ctrl-C/SIGTERM."""
    from .pipeline import Pipeline
    from .sinks import ConsoleSink

    s = cfg.load(cfg.ListenSettings, _fields(args, cfg.ListenSettings), args.config)
    if _use_tui(s):
        from . import tui
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
    """Tag every station of the stations file (or of its shard) until they end or Ctrl-C/SIGTERM.

    A station that fails is reported on stderr and the others go on; the exit code is then that
    station's (1, or 2 for a bad input).
    """
    from .pipeline import Pipeline
    from .sinks import ConsoleSink
    from .stations import load_stations, shard

    s = cfg.load(cfg.MonitorSettings, _fields(args, cfg.MonitorSettings), args.config)
    stations = shard(load_stations(args.stations, s), s.shard)
    if not stations:
        raise UsageError(f"shard {s.shard}: no stations in {args.stations}")
    tui = _use_tui(s)
    p = Pipeline(s, [] if tui else [ConsoleSink(json_lines=True)], stations=stations)
    _add_outputs(p, s)
    if tui:
        from . import tui as tui_app
        tui_app.run_monitor(p)
    else:
        shard_note = f" (shard {s.shard})" if s.shard else ""
        _run_console(p, lambda: f"monitoring {len(stations)} stations{shard_note}")
    for name, err in p.failed:
        _error(f"station {name}: {err}")
    if p.failed:
        return max(err.exit_code for _, err in p.failed)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag files; bad files are reported and the rest still tagged (exit 2 if any failed)."""
    from .engine import Engine
    from .tagger import tag_files

    s = cfg.load(cfg.TagSettings, _fields(args, cfg.TagSettings), args.config)
    engine = Engine(s.model, s.provider)
    labels = engine.meta.labels
    out = sys.stdout
    writer = None
    if s.csv:
        writer = csv.writer(out)
        writer.writerow(["path", "genre", "confidence", "windows", *labels])
    worst = 0
    with _sigterm_as_interrupt():
        try:
            for r in tag_files(args.files, s, engine):
                if r.error is not None:
                    _error(str(r.error))
                    worst = max(worst, r.error.exit_code)
                    if s.json:
                        print(json.dumps(r.to_dict()), file=out, flush=True)
                    continue
                if s.json:
                    print(json.dumps(r.to_dict()), file=out, flush=True)
                elif writer is not None:
                    writer.writerow([r.path, r.genre, f"{r.confidence:.4f}", r.windows,
                                     *(f"{r.probs.get(k, 0.0):.4f}" for k in labels)])
                    out.flush()
                else:
                    print(f"{r.path}\t{r.genre}\t{r.confidence:.2f}\t({r.windows} windows)", file=out, flush=True)
        except KeyboardInterrupt:
            raise RuntimeFailure("interrupted; the files not shown above were not tagged") from None
    return worst


def cmd_subscribe(args: argparse.Namespace) -> int:
    """Print each received event as a JSON line with its ``topic``."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 20)  # catch a publisher soon after it binds (short --fast runs)
    try:
        sock.connect(args.connect)
    except zmq.ZMQError as exc:
        sock.close()
        ctx.term()
        raise UsageError(f"cannot connect to {args.connect}: {exc.strerror}") from None
    for t in args.topic or [""]:
        sock.setsockopt_string(zmq.SUBSCRIBE, t)
    print(f"{PROG}: subscribed to {args.connect} ({', '.join(args.topic or ['all topics'])})",
          file=sys.stderr, flush=True)
    n = 0
    with _sigterm_as_interrupt():
        try:
            while args.count is None or n < args.count:
                if not sock.poll(200):
                    continue
                topic, event = events.decode(sock.recv_string())
                print(json.dumps({"topic": topic, **event}, separators=(",", ":")), flush=True)
                n += 1
                if args.until_final and events.base_topic(topic) == events.STATUS and event.get("final"):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            ctx.term()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Print airtime per station and genre (seconds and share) for the period, from a segment log."""
    from .seglog import airtime, parse_time, read_rows

    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError("--until must be after --since")
    table = airtime(read_rows(args.log), since, until)
    writer = csv.writer(sys.stdout) if args.csv else None
    if writer is not None:
        writer.writerow(["station", "genre", "seconds", "share"])
    elif not table:
        print("no segments in this period", file=sys.stderr)
    for station in sorted(table):
        genres = table[station]
        total = sum(genres.values())
        if writer is None:
            print(f"{station}  ({_hms(total)} logged)")
        for genre, secs in sorted(genres.items(), key=lambda kv: (-kv[1], kv[0])):
            if writer is not None:
                writer.writerow([station, genre, f"{secs:.1f}", f"{secs / total:.4f}"])
            else:
                print(f"  {genre:<12} {_hms(secs):>10}  {100 * secs / total:5.1f} %")
    return 0


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def cmd_proxy(args: argparse.Namespace) -> int:
    """Forward every event from ``--connect`` publishers to subscribers of ``--publish`` until Ctrl-C/SIGTERM."""
    import threading

    from .proxy import Proxy

    proxy = Proxy(args.connect, args.publish)
    proxy.start()
    print(f"{PROG}: proxy {', '.join(args.connect)} -> {args.publish}", file=sys.stderr, flush=True)
    with _sigterm_as_interrupt():
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            proxy.stop()
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """List input devices (index, name, channels, default rate; * = default input)."""
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
            print(f"{mark} {d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
                  f"{d['default_samplerate']:.0f} Hz)")
    if not found:
        print("no input devices", file=sys.stderr)
    return 0


def _accuracies(metrics: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every accuracy figure in the (nested) metrics as (dotted key, value); ``{"mean": x}`` counts as x."""
    for k, v in metrics.items():
        if isinstance(v, dict) and "acc" in k.lower() and isinstance(v.get("mean"), (int, float)):
            yield f"{prefix}{k}", float(v["mean"])
        elif isinstance(v, dict):
            yield from _accuracies(v, f"{prefix}{k}.")
        elif "acc" in k.lower() and isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", float(v)


def _accuracy(metrics: dict) -> tuple[str, float] | None:
    """The headline accuracy: a test-track figure if there is one, else a track figure, else the first."""
    found = list(_accuracies(metrics))
    for want in ("test_track", "track_acc", ""):
        for key, value in found:
            if want in key:
                return key, value
    return None


def cmd_models(args: argparse.Namespace) -> int:
    """List installed models: name, arch, labels, accuracy from the metadata, size."""
    from .modelmeta import installed_models, resolve_model

    names = installed_models()
    if not names:
        print("no models installed (see models/ or $STREAMTAG_MODELS)", file=sys.stderr)
    for name in names:
        try:
            path, meta = resolve_model(name)
        except UsageError as exc:
            _error(str(exc))
            continue
        acc = _accuracy(meta.metrics)
        size = path.stat().st_size
        if args.json:
            print(json.dumps({"name": name, "arch": meta.arch, "labels": list(meta.labels),
                              "accuracy": None if acc is None else {acc[0]: acc[1]}, "size_bytes": size,
                              "path": str(path)}))
        else:
            acc_s = "accuracy n/a" if acc is None else f"{acc[0]} {acc[1]:.3f}"
            size_s = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"
            print(f"{name:<24} {meta.arch:<18} {acc_s:<44} {size_s:>9}  labels: {', '.join(meta.labels)}")
    return 0


COMMANDS = {"listen": cmd_listen, "monitor": cmd_monitor, "tag": cmd_tag, "subscribe": cmd_subscribe,
            "report": cmd_report, "proxy": cmd_proxy, "devices": cmd_devices, "models": cmd_models}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one command and return its exit code."""
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except StreamtagError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # reader went away (e.g. `| head`): nothing more to say
        return 0


if __name__ == "__main__":
    sys.exit(main())
