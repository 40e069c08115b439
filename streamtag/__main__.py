"""``python -m streamtag`` and the ``streamtag`` command: stop-signal handlers first, then everything else.

Only :mod:`streamtag.signals` (stdlib) is imported before the handlers are in place, so a Ctrl-C
in the first instant of a run is recorded instead of tearing an import apart.
"""

import sys

from .signals import install


def main() -> int:
    """Install the stop-signal handlers, then run :func:`streamtag.cli.main`."""
    install()
    from .cli import main as cli_main
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
