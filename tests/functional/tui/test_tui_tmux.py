"""`streamtag listen --input CLIP` in a real terminal (tmux): the screen shows the genre and the footer, q exits 0."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _streamtag() -> str:
    """The installed ``streamtag`` script, else this interpreter running the package."""
    return shutil.which("streamtag") or f"{shlex.quote(sys.executable)} -m streamtag"


class Tmux:
    """A private tmux server (its socket in the test's tmp folder) running one command in a 120x40 window."""

    def __init__(self, socket_path: Path):
        self.base = ["tmux", "-S", str(socket_path)]

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "main")

    def wait_for(self, condition, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if condition(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")
            time.sleep(0.25)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def _start(tmux: Tmux, script: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("NO_COLOR", None)
    subprocess.run([*tmux.base, "new-session", "-d", "-s", "main", "-x", "120", "-y", "40", "sh", "-c", script],
                   check=True, env=env)


def _wait_file(path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path.exists(), f"{path.name} never written: the command did not exit"
    return path.read_text().strip()


def test_listen_in_a_real_terminal(clip, real_model, tmp_path):
    rc_file = tmp_path / "rc"
    address = f"tcp://127.0.0.1:{_free_port()}"
    listen = (f"{_streamtag()} listen --input {shlex.quote(str(clip('classical')))} "
              f"--model {real_model} --publish {address}")
    script = f"cd {shlex.quote(str(REPO))} && {listen}; echo $? > {shlex.quote(str(rc_file))}"
    tmux = Tmux(tmp_path / "tmux.sock")
    _start(tmux, script)
    try:
        screen = tmux.wait_for(lambda s: "C L A S S I C A L" in s, 40, "the genre classical")
        assert "▶C classical" in screen                      # its bar is marked
        assert "q Quit" in screen and "p Pause" in screen and "? Help" in screen
        assert real_model in screen and address in screen
        tmux("send-keys", "-t", "main", "q")
        assert _wait_file(rc_file, 20) == "0"
    finally:
        tmux.kill()


def test_sigterm_quits_cleanly(clip, real_model, tmp_path):
    """`kill -TERM` does what q does: the pipeline stops, the terminal is restored, exit code 0."""
    rc_file, pid_file = tmp_path / "rc", tmp_path / "pid"
    listen = f"{_streamtag()} listen --input {shlex.quote(str(clip('metal')))} --model {real_model} --publish ''"
    inner = f"echo $$ > {shlex.quote(str(pid_file))}; exec {listen}"
    script = f"cd {shlex.quote(str(REPO))} && sh -c {shlex.quote(inner)}; echo $? > {shlex.quote(str(rc_file))}"
    tmux = Tmux(tmp_path / "tmux.sock")
    _start(tmux, script)
    try:
        tmux.wait_for(lambda s: "M E T A L" in s, 40, "the genre metal")
        os.kill(int(_wait_file(pid_file, 5)), signal.SIGTERM)
        assert _wait_file(rc_file, 20) == "0"
    finally:
        tmux.kill()


def test_bad_input_fails_in_one_line_before_the_screen(tmp_path):
    rc_file, err_file = tmp_path / "rc", tmp_path / "err"
    listen = f"{_streamtag()} listen --input {shlex.quote(str(tmp_path / 'missing.flac'))} --publish ''"
    script = (f"cd {shlex.quote(str(REPO))} && {listen} 2> {shlex.quote(str(err_file))}; "
              f"echo $? > {shlex.quote(str(rc_file))}")
    tmux = Tmux(tmp_path / "tmux.sock")
    _start(tmux, script)
    try:
        assert _wait_file(rc_file, 30) == "2"
        lines = err_file.read_text().splitlines()
        assert len(lines) == 1 and "missing.flac" in lines[0] and "no such file" in lines[0]
    finally:
        tmux.kill()
