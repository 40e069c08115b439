"""Checked errors: each carries the one-line message and the exit code the CLI reports."""


def one_line(text: str) -> str:
    """``text`` with every non-printable character escaped (a newline in a file name stays one line;
    bytes of a non-UTF-8 name show as ``\\udcXX``), safe to write to any UTF-8 stream."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class StreamtagError(Exception):
    """Base for errors shown to the user as one line; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(StreamtagError):
    """Bad arguments or bad input (missing/corrupt file, unknown device, bad model): exit 2."""

    exit_code = 2


class RuntimeFailure(StreamtagError):
    """The pipeline failed while running (stream died, device lost): exit 1."""

    exit_code = 1


class OutputClosed(StreamtagError):
    """Standard output's reader went away (``| head``): stop quietly; exit 0, no message."""

    exit_code = 0

    def __init__(self) -> None:
        super().__init__("standard output was closed by its reader")
