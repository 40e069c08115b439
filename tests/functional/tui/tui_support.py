"""Support for the TUI tests: real audio, a recorded real session, reading the screen.

``python tests/functional/tui/tui_session.py`` re-records ``data/session.json``: it plays a real
clip (15 s of GTZAN classical then 15 s of metal) through the real pipeline in real time with
the real model and keeps what the pipeline published, so the snapshot tests can replay a real
session deterministically.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SESSION = HERE / "data" / "session.json"
LEVEL_EVERY = 5
"""Keep every n-th level event of the recording (10 Hz -> 2 Hz)."""


def shared_dir() -> Path:
    """``$STREAMTAG_SHARED`` or ``<repo>/../shared``."""
    return Path(os.environ.get("STREAMTAG_SHARED") or REPO.parent / "shared")


def gtzan_clip(genre: str, n: int = 0) -> Path:
    """Path of ``gtzan-mini/<genre>/<genre>.0000n.flac``."""
    return shared_dir() / "data" / "gtzan-mini" / genre / f"{genre}.{n:05d}.flac"


def write_mixed_clip(path: Path, seconds: float = 15.0) -> Path:
    """``seconds`` of classical.00000 then ``seconds`` of metal.00000, as FLAC (a real genre change)."""
    parts = []
    rate = None
    for genre in ("classical", "metal"):
        data, rate = sf.read(str(gtzan_clip(genre)), dtype="float32")
        parts.append(data[: int(seconds * rate)])
    sf.write(str(path), np.concatenate(parts), rate, format="FLAC")
    return path


class _Recorder:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []

    def publish(self, topic: str, event: dict) -> None:
        self.events.append((topic, event))

    def close(self) -> None:
        pass


def record() -> dict:
    """Run the mixed clip in real time through the real pipeline and keep its session."""
    sys.path.insert(0, str(REPO))
    from streamtag.pipeline import Pipeline
    from streamtag.settings import ListenSettings

    with tempfile.TemporaryDirectory() as tmp:
        clip = write_mixed_clip(Path(tmp) / "classical-then-metal.flac")
        rec = _Recorder()
        pipeline = Pipeline(ListenSettings(input=str(clip), status_interval=1.0), [rec])
        cpu0, wall0 = time.process_time(), time.monotonic()
        pipeline.start()
        pipeline.wait()
        cpu = 100.0 * (time.process_time() - cpu0) / (time.monotonic() - wall0)
        source = pipeline.source_description.replace(str(clip), clip.name)
    levels = [e for t, e in rec.events if t == "streamtag.level"][::LEVEL_EVERY]
    events = [(t, e) for t, e in rec.events
              if t != "streamtag.level" or any(e is k for k in levels)]
    events = [(t, e) for t, e in events if not (t == "streamtag.status" and e["final"])]
    return {"source": source, "sample_rate": pipeline.sample_rate, "provider": pipeline.provider,
            "publish_address": pipeline.publish_address, "model": pipeline.meta.name,
            "cpu_percent": round(cpu, 1), "events": events}


def screen_text(app) -> str:
    """What the terminal shows, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)


def replay_app(session: dict, **kwargs):
    """A :class:`StreamtagApp` over a real, never-started Pipeline showing the recorded session's source."""
    from streamtag.pipeline import Pipeline
    from streamtag.settings import ListenSettings
    from streamtag.tui import StreamtagApp

    class Replayed(Pipeline):
        source_description = session["source"]  # what the recorded source said (it is never opened here)
        sample_rate = session["sample_rate"]

    pipeline = Replayed(ListenSettings(input=session["source"], model=session["model"],
                                       publish=session["publish_address"]))
    pipeline.provider = session["provider"]
    return StreamtagApp(pipeline, cpu=lambda: session["cpu_percent"], **kwargs)


async def replay(pilot, session: dict) -> None:
    """Publish the recorded events through the app's TuiSink (the live message path) and let it settle."""
    sink = pilot.app.sink
    for topic, event in session["events"]:
        sink.publish(topic, event)
    sink.flush()
    await pilot.pause(0.3)


if __name__ == "__main__":
    session = record()
    SESSION.write_text(json.dumps(session, indent=0) + "\n")
    print(f"{SESSION}: {len(session['events'])} events")
