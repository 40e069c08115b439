"""Signals at start-up, mid-run and during shutdown, against real CLI processes (run side by side).

Documented behaviour: SIGINT, SIGTERM and SIGHUP stop ``listen`` and ``subscribe`` cleanly (exit
0, buffered audio tagged, final status published); they cut ``tag`` short (exit 1, one
``interrupted`` line, every result printed before it complete). Signals during the clean stop are
ignored. SIGINT/SIGTERM work even when the process started with them ignored; SIGHUP ignored at
start (``nohup``) stays ignored. In the first few milliseconds of interpreter start-up, before any
streamtag code runs, a signal has Python's default effect.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from hostile import check, finish, music, popen, wav
from streamtag import events

LISTEN = ("listen", "--no-tui", "--json", "--no-publish", "--model", "tiny")
STARTUP_DELAYS = (0.05, 0.2, 0.4, 0.7, 1.1, 1.6, 2.5)
"""Seconds after exec: interpreter start-up, imports, settings, model load, source open."""


def _python_startup_only(run) -> bool:
    """True when the signal came before the handlers were in place: interpreter start-up, or the module-level
    imports of ``streamtag/__main__.py`` and ``streamtag/signals.py`` that precede ``install()``."""
    frames = re.findall(r'File "[^"]*/streamtag/(\w+)\.py", line \d+, in (\S+)', run.err)
    early = all(mod in ("__init__", "__main__", "signals") and where == "<module>" for mod, where in frames)
    return run.code in (1, -2, -15, -1) and early


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return wav(tmp_path_factory.mktemp("sig") / "long.wav", music(120.0, 16000), 16000)


def _schedule(cases: dict, env: dict, timeout: float = 60, after_first_line: bool = False):
    """Start every case at once; send each its ``(delay, signal)`` list on time; collect :class:`hostile.Run`s.

    Delays count from the start, or (``after_first_line``) from the case's first line on stdout,
    which is then put back in front of the rest of its output.
    """
    t0 = time.monotonic()
    procs = {name: popen(*argv, env=env, preexec_fn=kw.get("preexec")) for name, (argv, sigs, kw) in cases.items()}
    first = {name: p.stdout.readline() if after_first_line else b"" for name, p in procs.items()}
    ready = time.monotonic() if after_first_line else t0
    pending = sorted((t, name, sig) for name, (_, sigs, _) in cases.items() for t, sig in sigs)
    for t, name, sig in pending:
        time.sleep(max(0.0, ready + t - time.monotonic()))
        if procs[name].poll() is None:
            procs[name].send_signal(sig)
    runs = {name: finish(p, t0, timeout) for name, p in procs.items()}
    for name, r in runs.items():
        r.out = first[name].decode() + r.out
    return runs


def _final(run) -> dict:
    last = run.lines[-1]
    assert last["topic"] == events.STATUS and last["final"], last
    return last


def test_signals_at_startup_never_give_a_traceback(tiny_env, long_clip, tmp_path):
    cases = {}
    for i, d in enumerate(STARTUP_DELAYS):
        sig = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)[i % 3]
        cases[f"listen@{d}"] = ([*LISTEN, "--input", long_clip], [(d, sig)], {})
        cases[f"tag@{d}"] = (["tag", long_clip, long_clip, "--model", "tiny"], [(d, sig)], {})
    runs = _schedule(cases, tiny_env)
    early = {name for name, r in runs.items() if _python_startup_only(r) and "interrupted" not in r.err}
    assert not {f"listen@{STARTUP_DELAYS[-1]}", f"tag@{STARTUP_DELAYS[-1]}"} & early, early
    for name, r in runs.items():
        if name in early:
            continue
        if name.startswith("listen"):
            check(r, 0, bound=20)                            # stopping listen is a normal end
            if r.lines:
                _final(r)
        elif r.code == 0:                                    # tag finished before the signal came
            check(r, 0, bound=20, jsonl=False)
        else:
            check(r, 1, "interrupted", bound=20, jsonl=False)


def test_signals_mid_run_and_during_shutdown(tiny_env, long_clip):
    def ign():
        signal.signal(signal.SIGINT, signal.SIG_IGN)           # as a script's `streamtag listen &` starts

    def nohup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    listen = [*LISTEN, "--input", long_clip]
    cases = {                                               # delays count from the first window's line
        "sigint": (listen, [(1.0, signal.SIGINT)], {}),
        "sighup": (listen, [(1.0, signal.SIGHUP)], {}),
        "sigint-started-ignored": (listen, [(1.0, signal.SIGINT)], {"preexec": ign}),
        "nohup-then-term": (listen, [(0.5, signal.SIGHUP), (4.0, signal.SIGTERM)], {"preexec": nohup}),
        "storm-during-stop": (listen, [(1.0 + k * 0.01, s) for k, s in
                                       enumerate([signal.SIGTERM, signal.SIGINT, signal.SIGHUP] * 5)], {}),
        "fast-storm": ([*listen, "--fast", "--hop", "0.1"], [(0.05 + k * 0.02, signal.SIGINT) for k in range(20)], {}),
    }
    runs = _schedule(cases, tiny_env, after_first_line=True)
    for name, r in runs.items():
        assert r.code == 0, (name, r.code, r.err[-500:])
        check(r, 0, bound=30)
        status = _final(r)
        genre = r.events(events.GENRE)
        assert [e["seq"] for e in genre] == list(range(len(genre))), name   # nothing lost, in order
        assert status["windows"] == len(genre)
    assert runs["sigint"].lines[-1]["uptime_s"] < 10                          # it stopped when told
    assert runs["sigint-started-ignored"].lines[-1]["uptime_s"] < 10          # SIGINT ignored at start: still stops
    # SIGHUP stayed ignored under nohup: that run went on to its SIGTERM 3.5 s later (real time: ~1 window/s)
    assert len(runs["nohup-then-term"].events(events.GENRE)) >= len(runs["sighup"].events(events.GENRE)) + 2


def test_tag_interrupted_mid_run_returns_1_and_keeps_the_finished_results(tiny_env, long_clip):
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = popen("tag", *[long_clip] * 40, "--json", "--batch", "1", "--model", "tiny", env=tiny_env)
        t0 = time.monotonic()
        first = proc.stdout.readline()
        proc.send_signal(sig)
        r = finish(proc, t0, 60)
        r.out = first.decode() + r.out
        check(r, 1, "interrupted; the files not shown above were not tagged", bound=30)
        assert 1 <= len(r.lines) < 40 and all(o["windows"] == 120 for o in r.lines)


def test_subscribe_stops_cleanly_on_signals(tiny_env):
    cases = {f"subscribe-{s.name}": (["subscribe", "--connect", "tcp://127.0.0.1:9"], [(0.3, s), (1.5, s)], {})
             for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    for name, r in _schedule(cases, tiny_env, timeout=20).items():
        check(r, 0, bound=10)
