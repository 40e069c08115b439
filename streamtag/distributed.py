"""``streamtag tag --ray [ADDRESS]`` (or ``python -m streamtag.distributed``): tagging a catalogue on Ray.

The driver reads the file list into a Ray Data dataset; a pool of actors (``--jobs`` of them, one GPU
each when the cluster has GPUs) each holds one ONNX engine and tags batches of paths with the local
tagger (:func:`streamtag.tagger.tag_files`: streaming decode, windows batched). Results come back to
the driver in input order and go out as the same lines as a local ``tag``; the driver keeps the
``--cache`` (files whose path, size and mtime it already knows are not sent; workers hash what they
read so the driver can store their results). Ray is the optional extra ``streamtag[ray]``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Iterator, Sequence

from .errors import UsageError
from .settings import TagSettings
from .tagger import FileResult, TagJob

if TYPE_CHECKING:
    from .cache import ResultCache
    from .progress import Progress

FILES_PER_CALL = 4
"""Paths an actor tags in one call (their windows share engine batches)."""

LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""Object store of a Ray instance started here: only paths and results travel through it."""

_ADDRESS = re.compile(r"^(auto|local|(ray|ray\+\w+|https?)://\S+|[\w.-]+:\d+)$")


class _Tagger:
    """Ray Data actor: one engine, tags a batch of paths (the local tagger, one decode thread, one lane:
    an actor is one CPU)."""

    def __init__(self, settings: dict):
        from .tagger import tag_engine

        self.settings = TagSettings(**{**settings, "jobs": 1})
        self.engine = tag_engine(self.settings)

    def __call__(self, batch: dict) -> dict:
        from .tagger import tag_files

        jobs = [TagJob(str(p), "") for p in batch["path"]]
        rows = [_to_wire(r) for r in tag_files(jobs, self.settings, self.engine, want_digest=True, lanes=1)]
        return {"index": list(batch["index"]), "result": rows}


def _to_wire(r: FileResult) -> str:
    return json.dumps({**r.to_dict(), "digest": r.digest, "seconds": r.seconds})


def _from_wire(text: str) -> FileResult:
    d = json.loads(text)
    if "error" in d:
        return FileResult(d["path"], error=UsageError(d["error"]))
    r = FileResult.from_verdict(d["path"], d, d["seconds"])
    r.cached, r.digest = False, d["digest"]
    return r


def _connect(address: str, jobs: int) -> bool:
    """Join the cluster at ``address`` (``local``: ``$RAY_ADDRESS`` if set, else start one here).

    Returns True when the instance was started here."""
    import ray

    if not _ADDRESS.match(address):
        raise UsageError(f"--ray {address!r}: not a Ray address (write --ray after the files, or --ray=ADDRESS)")
    kw: dict = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
                "configure_logging": True}
    if address == "local" and os.environ.get("RAY_ADDRESS"):
        address = kw["address"] = os.environ["RAY_ADDRESS"]
    elif address == "local":
        kw.update(address="local", num_cpus=max(jobs, 1), object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    else:
        kw["address"] = address
    try:
        ray.init(**kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"--ray {address}: cannot connect ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return kw["address"] == "local"


def tag_on_ray(jobs: Sequence[TagJob], settings: TagSettings, *, cache: ResultCache | None = None,
               model_key: str = "", progress: Progress | None = None) -> Iterator[FileResult]:
    """Tag ``jobs`` on Ray (``settings.ray``: ``local`` or a cluster address), yielding results in input order."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'streamtag[ray]'") from None
    ready: dict[int, FileResult] = {}
    todo: list[dict] = []
    for i, job in enumerate(jobs):
        digest = cache.known_digest(job.path) if cache is not None and not job.error else None
        hit = cache.get(digest, model_key) if digest else None
        if job.error:
            ready[i] = FileResult(job.path, error=UsageError(job.error))
        elif hit is not None:
            ready[i] = FileResult.from_verdict(job.path, *hit)
        else:
            todo.append({"index": i, "path": job.path})
    rows: Iterator[dict] = iter(())
    if todo:
        started_here = _connect(settings.ray or "local", settings.jobs)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 and settings.provider != "cpu" else 0
        wire = {k: v for k, v in asdict(settings).items() if k in _ACTOR_FIELDS}
        # a local instance has no node to lose: no actor restarts (which also silences Ray's warning
        # that restartable actors keep their arguments in the object store)
        restarts = {"max_restarts": 0} if started_here else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own note on passing max_restarts
            rows = iter(ray.data.from_items(todo).map_batches(
                _Tagger, fn_constructor_kwargs={"settings": wire}, batch_size=FILES_PER_CALL,
                compute=ray.data.ActorPoolStrategy(size=settings.jobs), num_gpus=gpus, batch_format="numpy",
                **restarts).iter_rows())
    emitted = received = 0
    try:
        while emitted < len(jobs):
            while emitted in ready:
                r = ready.pop(emitted)
                if cache is not None and r.digest:
                    cache.remember(jobs[emitted].path, r.digest)
                if progress is not None:
                    progress.file_done(jobs[emitted].size, r.seconds, cached=r.cached, failed=r.error is not None)
                    progress.tick()
                yield r
                emitted += 1
            if emitted < len(jobs):
                row = next(rows)
                ready[int(row["index"])] = _from_wire(str(row["result"]))
                received += 1
                if received == len(todo):
                    next(rows, None)  # let the dataset finish while Ray is up
    finally:
        if todo:
            getattr(rows, "close", lambda: None)()
            ray.shutdown()


_ACTOR_FIELDS = ("model", "provider", "hop", "vote", "vote_window", "ema_alpha", "confirm", "silence_db", "batch")
"""Settings an actor needs (the rest stay with the driver)."""


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m streamtag.distributed ARGS`` = ``streamtag tag --ray ARGS`` (``--ray`` defaults to local)."""
    from .cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--ray" or a.startswith("--ray=") for a in args):
        args.append("--ray")
    return cli_main(["tag", *args])


if __name__ == "__main__":
    sys.exit(main())
