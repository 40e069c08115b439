"""Build hook: wheels carry every file of ``models/`` inside the package, as ``streamtag/models/``.

The shipped models live in ``models/`` at the top of the checkout (training exports there); a
built wheel or an sdist-built wheel copies whatever that folder holds at build time, so an
installed streamtag finds its models without a checkout. Editable installs read ``models/`` in
place. Everything else about the package is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithModels(build_py):
    """``build_py`` that also copies ``models/`` into the built package."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        src = Path(__file__).resolve().parent / "models"
        dest = Path(self.build_lib) / "streamtag" / "models"
        for f in sorted(src.rglob("*")):
            if f.is_file():
                target = dest / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)


setup(cmdclass={"build_py": BuildPyWithModels})
