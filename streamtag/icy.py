"""A minimal HTTP/1.0 client for radio streams: status codes, redirects, ICY metadata, stall detection.

:class:`IcyStream` opens ``http(s)://`` URLs (Icecast, Shoutcast's ``ICY 200 OK`` included) with
``Icy-MetaData: 1`` and reads the body as a file: the ICY metadata blocks interleaved every
``icy-metaint`` bytes are taken out and their ``StreamTitle`` handed to ``on_title``. A read that
waits more than ``timeout`` seconds raises :class:`StreamStalled`; :meth:`IcyStream.close` from
another thread ends a blocked read at once. Plain sockets keep every failure visible and typed.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from typing import Callable
from urllib.parse import urljoin, urlsplit

USER_AGENT = "streamtag/0.1"
MAX_HEADER_BYTES = 65536
MAX_REDIRECTS = 5


class StreamError(Exception):
    """A network stream failed; ``terminal`` errors are not worth retrying (bad URL, 403/404)."""

    terminal = False


class HttpStatusError(StreamError):
    """The server answered with a non-200 status."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.terminal = status in (400, 401, 403, 404, 405, 410, 451)


class StreamStalled(StreamError):
    """No bytes (or no audio) arrived for the stall timeout."""


def normalize_url(url: str) -> str:
    """``icecast://`` (any case) becomes ``http://``; other schemes are kept."""
    scheme, sep, rest = url.partition("://")
    return f"http://{rest}" if sep and scheme.lower() == "icecast" else url


_TITLE = re.compile(r"StreamTitle='(.*?)';(?=Stream\w*=|\s*$)", re.S)


def parse_title(block: bytes) -> str | None:
    """``StreamTitle`` from an ICY metadata block (UTF-8, else Latin-1), or None when absent."""
    text = block.rstrip(b"\0").decode("utf-8", errors="strict") if _utf8(block) else block.rstrip(b"\0").decode("latin-1")
    m = _TITLE.search(text)
    return None if m is None else m.group(1).strip()


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class IcyStream:
    """The body of one HTTP GET as a readable binary file (see the module docstring)."""

    def __init__(self, url: str, timeout: float = 10.0, on_title: Callable[[str], None] | None = None):
        self.url = normalize_url(url)
        self.timeout = timeout
        self.on_title = on_title
        self.headers: dict[str, str] = {}
        self.received = 0
        """Body bytes received (audio and metadata)."""
        self.audio_bytes = 0
        """Audio bytes handed to the reader."""
        self.content_length: int | None = None
        """Body length the server announced (a finite file), else None (a live stream)."""
        self.last_audio = time.monotonic()
        """When the decoder last produced audio (see :meth:`touch`); a read past ``timeout`` after it stalls."""
        self._sock: socket.socket | None = None
        self._buf = b""
        self._metaint = 0
        self._until_meta = 0
        self._closed = False
        self._connect()

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> None:
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            status, reason = self._request(url)
            if status in (301, 302, 303, 307, 308) and "location" in self.headers:
                self._close_socket()
                url = urljoin(url, self.headers["location"])
                continue
            if status != 200:
                self._close_socket()
                raise HttpStatusError(status, reason)
            break
        else:
            raise _terminal(StreamError(f"more than {MAX_REDIRECTS} redirects"))
        self._metaint = _int(self.headers.get("icy-metaint")) or 0
        self._until_meta = self._metaint
        self.content_length = _int(self.headers.get("content-length"))

    def _request(self, url: str) -> tuple[int, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _terminal(StreamError(f"unsupported URL {url!r} (expected http://, https:// or icecast://)"))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            sock = socket.create_connection((parts.hostname, port), timeout=self.timeout)
        except socket.gaierror as exc:
            raise _terminal(StreamError(f"unknown host {parts.hostname} ({exc.strerror})")) from None
        except TimeoutError:
            raise StreamStalled(f"no connection within {self.timeout:g} s") from None
        except OSError as exc:
            raise StreamError(exc.strerror or str(exc)) from None
        if parts.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise StreamError(f"TLS failed ({exc})") from None
        self._sock = sock
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        request = (f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n"
                   f"Icy-MetaData: 1\r\nConnection: close\r\n\r\n")
        self._send(request.encode("latin-1", errors="replace"))
        head = self._read_head()
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"(?:HTTP/\d(?:\.\d)?|ICY)\s+(\d{3})\s*(.*)", lines[0])
        if m is None:
            raise StreamError(f"not an HTTP response ({lines[0][:60]!r})")
        self.headers = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                self.headers[key.strip().lower()] = value.strip()
        return int(m.group(1)), m.group(2).strip()

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise StreamStalled("request not accepted in time") from None
        except OSError as exc:
            raise StreamError(exc.strerror or str(exc)) from None

    def _read_head(self) -> bytes:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > MAX_HEADER_BYTES:
                raise StreamError("response headers too long")
            chunk = self._recv(4096)
            if not chunk:
                raise StreamError("connection closed before the response headers")
            self._buf += chunk
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        return head

    def _recv(self, n: int) -> bytes:
        sock = self._sock
        if sock is None or self._closed:
            return b""
        try:
            return sock.recv(n)
        except TimeoutError:
            raise StreamStalled(f"no data for {self.timeout:g} s") from None
        except OSError as exc:
            if self._closed:
                return b""
            raise StreamError(exc.strerror or str(exc)) from None

    # -- body ----------------------------------------------------------------------------------
    def touch(self) -> None:
        """The decoder produced audio: restart the no-audio clock."""
        self.last_audio = time.monotonic()

    def _raw(self, n: int) -> bytes:
        if self._buf:
            out, self._buf = self._buf[:n], self._buf[n:]
        else:
            out = self._recv(n)
        self.received += len(out)
        return out

    def _raw_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self._raw(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` audio bytes (metadata removed); ``b""`` at the end of the body or after :meth:`close`."""
        if time.monotonic() - self.last_audio > self.timeout:
            raise StreamStalled(f"bytes but no audio for {self.timeout:g} s")
        if self._metaint:
            if self._until_meta == 0:
                size = self._raw_exact(1)
                if not size:
                    return b""
                block = self._raw_exact(size[0] * 16)
                if block and self.on_title is not None:
                    title = parse_title(block)
                    if title is not None:
                        self.on_title(title)
                self._until_meta = self._metaint
            n = min(n, self._until_meta)
        out = self._raw(n)
        if self._metaint:
            self._until_meta -= len(out)
        self.audio_bytes += len(out)
        return out

    @property
    def complete(self) -> bool:
        """True when a finite body (Content-Length) arrived in full."""
        return self.content_length is not None and self.received >= self.content_length

    def _close_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        """Close the connection (safe from another thread: a blocked :meth:`read` returns ``b""``)."""
        self._closed = True
        self._close_socket()


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _terminal(exc: StreamError) -> StreamError:
    exc.terminal = True
    return exc
