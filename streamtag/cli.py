"""``streamtag listen | tag | subscribe | devices | models``.

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

from . import __version__, events, settings as cfg
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
    p.add_argument("--batch", type=int, metavar="N", help="most windows per model run (default: listen 32, tag 16)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every default is None so the settings layers can tell what was given)."""
    parser = _Parser(prog=PROG, description="Streaming music-genre tagger: live audio in, genre events out.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lp = sub.add_parser("listen", help="tag a live stream (device, file, stdin, URL) window by window")
    _common(lp)
    lp.add_argument("--input", "-i", metavar="PATH|URL|-", help="audio file, http(s) URL or - for raw PCM on stdin "
                    "(default: the input device)")
    lp.add_argument("--device", "-d", metavar="NAME|INDEX", help="input device (see `streamtag devices`)")
    lp.add_argument("--rate", type=int, metavar="HZ", help="stdin PCM rate (default 44100) or device capture rate")
    lp.add_argument("--channels", type=int, metavar="N", help="stdin PCM channels (default 1) or device channels")
    lp.add_argument("--format", choices=cfg.PCM_FORMATS, help="stdin PCM sample format (default s16le)")
    lp.add_argument("--fast", action="store_true", default=None, help="read files/URLs as fast as possible")
    lp.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    pub = lp.add_mutually_exclusive_group()
    pub.add_argument("--publish", metavar="ADDR", help=f"ZeroMQ PUB address (default {DEFAULT_PUBLISH})")
    pub.add_argument("--no-publish", dest="publish", action="store_const", const="", help="do not publish")
    lp.add_argument("--no-tui", dest="tui", action="store_false", default=None, help="print to the console")
    lp.add_argument("--json", action="store_true", default=None, help="console output as JSON lines")
    lp.add_argument("--no-json", dest="json", action="store_false", help="human console lines (overrides the config)")
    lp.add_argument("--stream", metavar="NAME", help="stream name in events (default: from the source)")
    lp.add_argument("--status-interval", type=float, metavar="S", help="seconds between status events (default 5)")

    tp = sub.add_parser("tag", help="tag audio files and folders (one result per file)")
    _common(tp)
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


def cmd_listen(args: argparse.Namespace) -> int:
    """Run the live pipeline until the input ends, ``--duration`` passes, or Ctrl-C/SIGTERM."""
    from .pipeline import Pipeline
    from .sinks import ConsoleSink

    s = cfg.load(cfg.ListenSettings, _fields(args, cfg.ListenSettings), args.config)
    use_tui = s.tui and not s.json and sys.stdout.isatty() and importlib.util.find_spec("streamtag.tui") is not None
    if use_tui:
        from . import tui
        return tui.run(Pipeline(s))
    p = Pipeline(s, [ConsoleSink(json_lines=s.json)])
    with _sigterm_as_interrupt():
        try:
            p.start()
            pub = f"; publishing on {p.publish_address}" if p.publish_address else ""
            print(f"{PROG}: {p.source_description} -> model {p.meta.name} on {p.provider}{pub}",
                  file=sys.stderr, flush=True)
            while not p.wait(0.2):
                pass
        except KeyboardInterrupt:
            p.stop()
    if p.error is not None:
        raise p.error
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """Tag files and folders; bad files are reported and the rest still tagged (exit 2 if any failed)."""
    from .cache import ResultCache, model_key
    from .modelmeta import resolve_model
    from .progress import Progress
    from .tagger import after_result, find_files, tag_files

    s = cfg.load(cfg.TagSettings, _fields(args, cfg.TagSettings), args.config)
    jobs = find_files(args.files, s.glob)
    onnx, meta = resolve_model(s.model)
    cache = ResultCache(s.cache) if s.cache else None
    key = model_key(onnx, meta, s) if cache is not None else ""
    labels = meta.labels
    out = sys.stdout
    writer = None
    if s.csv:
        writer = csv.writer(out)
        writer.writerow(["path", "genre", "confidence", "windows", *labels])
    worst = 0
    with _sigterm_as_interrupt():
        try:
            progress = Progress(len(jobs), sum(j.size for j in jobs), interval=s.progress_interval,
                                enabled=s.progress)
            if s.ray:
                from .distributed import tag_on_ray
                results = tag_on_ray(jobs, s, cache=cache, model_key=key, progress=progress)
            else:
                from .engine import Engine
                engine = Engine(s.model, s.provider)
                results = tag_files(jobs, s, engine, cache=cache, model_key=key, progress=progress)
            for job, r in zip(jobs, results):
                progress.clear_line()
                if r.error is None:
                    try:
                        notes = after_result(r, job, s, model=meta.name, cache=cache, model_key=key)
                    except StreamtagError as exc:
                        r.error = exc
                    else:
                        for note in notes:
                            print(f"{PROG}: {note}", file=sys.stderr, flush=True)
                if r.error is not None:
                    _error(str(r.error))
                    worst = max(worst, r.error.exit_code)
                if s.json:
                    print(json.dumps(r.to_dict()), file=out, flush=True)
                elif r.error is not None:
                    continue
                elif writer is not None:
                    writer.writerow([r.path, r.genre, f"{r.confidence:.4f}", r.windows,
                                     *(f"{r.probs.get(k, 0.0):.4f}" for k in labels)])
                    out.flush()
                else:
                    print(f"{r.path}\t{r.genre}\t{r.confidence:.2f}\t({r.windows} windows)", file=out, flush=True)
            progress.close()
        except KeyboardInterrupt:
            raise RuntimeFailure("interrupted; the files not shown above were not tagged") from None
        finally:
            if cache is not None:
                cache.close()
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
                if args.until_final and topic == events.STATUS and event.get("final"):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
            ctx.term()
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


COMMANDS = {"listen": cmd_listen, "tag": cmd_tag, "subscribe": cmd_subscribe, "devices": cmd_devices,
            "models": cmd_models}


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
