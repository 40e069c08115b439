"""CPU cost of the shipped models per 3-s window (ONNX Runtime), against musicnn exported without pruning.

For each model: median milliseconds per window at batch 1 and batch 32, with 1 and 2 intra-op threads,
over real audio windows. The baseline, measured in the same run, is musicnn-msd exported straight from
its checkpoint (every dead filter computed, as a plain port would) beside the shipped ``musicnn-zeroshot``
(dead filters dropped; same outputs): the ratio is what pruning buys. Rounds alternate between models
so that a change in machine load hits them alike; the load average is printed.

    python bench/bench_models.py [--models fusion,fast,musicnn-zeroshot,audioset-zeroshot] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.audio import load_mono  # noqa: E402
from streamtag.modelmeta import installed_models, resolve_model  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
CLIP = SHARED / "data" / "gtzan-mini" / "rock" / "rock.00005.flac"


def windows(rate: int, samples: int, n: int = 32) -> np.ndarray:
    """``n`` real overlapping windows of one clip at ``rate``."""
    x = load_mono(CLIP, rate)
    starts = np.linspace(0, len(x) - samples, n).astype(int)
    return np.stack([x[s:s + samples] for s in starts]).astype(np.float32)


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def unpruned_musicnn(out: Path) -> Path | None:
    """musicnn-zeroshot with every dead filter kept, exported to ``out`` (needs the training extras)."""
    try:
        import torch

        from training.models.mobilenet import GTZAN_GENRES
        from training.models.musicnn import ZeroShot, load_musicnn
        from training.models import build_model
    except ImportError:
        return None
    model = build_model("musicnn-zeroshot", GTZAN_GENRES).eval()
    model.backbone = ZeroShot(load_musicnn("msd", prune=False), model.backbone.genres)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, model.window_samples),), str(out), input_names=["waveform"],
                          output_names=["logits"], dynamic_shapes={"wave": {0: torch.export.Dim("batch")}},
                          opset_version=18, dynamo=True, external_data=False, verbose=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(installed_models()), help="comma-separated model names")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    targets = {}
    for name in args.models.split(","):
        path, meta = resolve_model(name)
        targets[name] = (path, meta.sample_rate, meta.window_samples)
    with tempfile.TemporaryDirectory() as tmp:
        if "musicnn-zeroshot" in targets:
            base = unpruned_musicnn(Path(tmp) / "musicnn-unpruned.onnx")
            if base is not None:
                targets["musicnn-msd unpruned (baseline)"] = (base, 16000, 48000)
        data = {name: windows(rate, n) for name, (_, rate, n) in targets.items()}
        times: dict[tuple[str, int, int], list[float]] = {}
        sessions = {(name, th): session(p, th) for name, (p, _, _) in targets.items() for th in (1, 2)}
        for (name, th), s in sessions.items():
            s.run(None, {"waveform": data[name][:2]})
        for _ in range(args.rounds):
            for (name, th), s in sessions.items():
                for batch in (1, 32):
                    t0 = time.perf_counter()
                    s.run(None, {"waveform": data[name][:batch]})
                    times.setdefault((name, th, batch), []).append((time.perf_counter() - t0) * 1000 / batch)
    print(f"load average {os.getloadavg()[0]:.2f}; ms per 3-s window, ONNX Runtime CPU, median of {args.rounds}")
    print(f"{'model':34s} {'1 thr b1':>9s} {'1 thr b32':>9s} {'2 thr b1':>9s} {'2 thr b32':>9s}")
    med = {k: float(np.median(v)) for k, v in times.items()}
    for name in targets:
        print(f"{name:34s} " + " ".join(f"{med[(name, th, b)]:9.2f}" for th in (1, 2) for b in (1, 32)))
    if "musicnn-msd unpruned (baseline)" in targets:
        for th, b in ((1, 1), (2, 1), (1, 32)):
            ratio = med[("musicnn-msd unpruned (baseline)", th, b)] / med[("musicnn-zeroshot", th, b)]
            print(f"pruning: musicnn-zeroshot is {ratio:.1f}x faster than the unpruned port ({th} thread, batch {b})")


if __name__ == "__main__":
    main()
