"""The built wheel (and the sdist it is built from) carries the shipped models and works with no checkout.

Built with ``python -m build --no-isolation`` from a copy of the project's files, installed
``--no-deps`` into a fresh venv whose only other packages are this environment's dependencies
(its site-packages on the path, without the editable install's hook), run from an empty folder.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

from clitools import REPO, gtzan_track

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "streamtag", "training", "models")


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_finds_its_models_and_tags_a_clip(tmp_path):
    pytest.importorskip("build")
    src = tmp_path / "src"
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        p = REPO / name
        shutil.copytree(p, src / name, ignore=junk) if p.is_dir() else shutil.copy(p, src / name)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    shipped = sorted(str(p.relative_to(REPO / "models")) for p in (REPO / "models").rglob("*") if p.is_file())
    (wheel,) = dist.glob("*.whl")
    in_wheel = sorted(n.removeprefix("streamtag/models/") for n in zipfile.ZipFile(wheel).namelist()
                      if n.startswith("streamtag/models/"))
    assert in_wheel == shipped
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as t:
        assert {n.split("/models/", 1)[1] for n in t.getnames() if "/models/" in n and t.getmember(n).isfile()} \
            >= set(shipped)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]   # numpy, onnxruntime, ...: a path entry, so no editable hook runs
    (venv / site.split(str(venv) + "/", 1)[1] / "deps.pth").write_text(deps + "\n")
    # --ignore-installed: the editable install seen through deps.pth must neither stop nor be touched by this one
    subprocess.run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--ignore-installed",
                    wheel], check=True, capture_output=True)
    home = tmp_path / "elsewhere"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMTAG_", "PYTHON"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home))
    exe = venv / "bin" / "streamtag"

    def run(*args):
        return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=home, env=env, timeout=120)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("streamtag ")
    models = [json.loads(line) for line in run("models", "--json").stdout.splitlines()]
    assert {m["name"] for m in models} == {p.stem for p in (REPO / "models").glob("*.onnx")}
    assert all(m["path"].startswith(str(venv)) for m in models)
    tagged = run("tag", gtzan_track("metal", 2), "--json")
    assert tagged.returncode == 0, tagged.stderr
    assert json.loads(tagged.stdout)["windows"] >= 28
