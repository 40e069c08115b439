"""A real Icecast server and real-time sources for the radio tests.

Icecast runs as a child process (not a daemon) on a free port on 127.0.0.1 with its config and
logs in a temporary folder. Run as root, Icecast refuses to start unless its config tells it to
drop privileges (``<security><changeowner>``): it then binds, switches to ``nobody:nogroup`` and
writes its logs there, so the folder is made world-writable. Sources are ``ffmpeg`` pushing a clip
in real time as MP3 over Icecast's source protocol; titles are set as an operator does, through
the admin ``metadata`` request, and reach listeners as ICY ``StreamTitle`` metadata.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from clitools import free_port

PASSWORD = "streamtag-test"
CONFIG = """<icecast>
  <location>tests</location><admin>tests@localhost</admin>
  <limits><clients>50</clients><sources>8</sources><queue-size>524288</queue-size><client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout><source-timeout>3</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>16384</burst-size></limits>
  <authentication><source-password>{pw}</source-password><admin-user>admin</admin-user>
    <admin-password>{pw}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>0</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{logs}</logdir><webroot>/usr/share/icecast2/web</webroot>
    <adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>
"""


class Icecast:
    """A running Icecast 2 on 127.0.0.1 (``url(mount)``, ``set_title(mount, title)``, ``stop()``).

    Its folder is a fresh one under the system temp dir (pytest's own are private to root, and Icecast
    writes as ``nobody``); :meth:`stop` removes it.
    """

    def __init__(self):
        exe = shutil.which("icecast2") or shutil.which("icecast")
        if exe is None:
            if os.environ.get("STREAMTAG_REQUIRE_AUDIO") == "1":
                pytest.fail("icecast2 is not installed (CI installs it)")
            pytest.skip("icecast2 not installed")
        self.port = free_port()
        self.folder = folder = Path(tempfile.mkdtemp(prefix="streamtag-icecast-"))
        folder.chmod(0o777)  # Icecast writes its logs after dropping to nobody
        owner = "<changeowner><user>nobody</user><group>nogroup</group></changeowner>" if os.geteuid() == 0 else ""
        cfg = folder / "icecast.xml"
        cfg.write_text(CONFIG.format(pw=PASSWORD, port=self.port, logs=folder, owner=owner))
        self.proc = subprocess.Popen([exe, "-c", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=(folder / "stderr.txt").open("w"))
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status-json.xsl", timeout=1).close()
                return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"Icecast did not start: {(folder / 'stderr.txt').read_text()[-300:]}")
                time.sleep(0.1)

    def url(self, mount: str) -> str:
        """Listener URL of ``mount`` (``icecast://`` scheme, as users write it)."""
        return f"icecast://127.0.0.1:{self.port}/{mount}"

    def source_url(self, mount: str) -> str:
        return f"icecast://source:{PASSWORD}@127.0.0.1:{self.port}/{mount}"

    def set_title(self, mount: str, title: str, timeout: float = 10) -> None:
        """Set the mount's ICY title through the admin interface (waits for the mount to exist)."""
        q = urllib.parse.urlencode({"mount": f"/{mount}", "mode": "updinfo", "song": title})
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/admin/metadata?{q}")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    if b"successful" in r.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cannot set the title of /{mount}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def push(server: Icecast, mount: str, clip: Path, title: str | None = None) -> subprocess.Popen:
    """Start ``ffmpeg`` sending ``clip`` to ``mount`` in real time as MP3; set ``title`` once it is on air."""
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", str(clip), "-c:a", "libmp3lame",
         "-b:a", "96k", "-content_type", "audio/mpeg", "-f", "mp3", server.source_url(mount)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if title is not None:
        server.set_title(mount, title)
    return proc
