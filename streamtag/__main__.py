"""``python -m streamtag`` and the ``streamtag`` command: stop-signal handlers first, then everything else.

Only :mod:`streamtag.signals` (stdlib) is imported before the handlers are in place, so a Ctrl-C
in the first instant of a run is recorded instead of tearing an import apart.
"""

import signal
import sys

from .signals import STOP_SIGNALS, install


def main() -> int:
    """Install the stop-signal handlers, run :func:`streamtag.cli.main`, then ignore the stop signals.

    Ignoring them for the last instant (interpreter shutdown would restore the default actions)
    keeps a late signal from turning a finished run's exit code into death by signal.
    """
    install()
    from .cli import main as cli_main
    code = cli_main()
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
