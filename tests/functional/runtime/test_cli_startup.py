"""The CLI imports lazily: ``--help`` (the program's and each command's) loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clitools import REPO, cli_env

HEAVY = {"numpy", "onnxruntime", "onnx", "soundfile", "soxr", "sounddevice", "zmq", "textual", "av", "torch"}
"""Top-level packages ``--help`` must not import (each costs tens to hundreds of milliseconds)."""


@pytest.mark.parametrize("args", [["--help"], ["tag", "--help"], ["listen", "--help"], ["monitor", "--help"],
                                  ["subscribe", "--help"], ["models", "--help"]], ids=" ".join)
def test_help_imports_no_heavy_library(args):
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "streamtag", *args], env=cli_env(),
                       capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0 and r.stdout.startswith("usage: streamtag"), r.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "streamtag" in imported and "argparse" in imported  # the import log was read
    assert not imported & HEAVY, sorted(imported & HEAVY)
