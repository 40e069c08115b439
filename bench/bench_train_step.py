"""CPU cost of one training step of each from-scratch architecture, against ``cnn`` in the same run.

Each architecture is built from its ``configs/train/<config>.toml`` and trained for a few steps
(front end, SpecAugment-free forward, cross-entropy, backward, AdamW) on a batch of real 3-s windows
at its batch size, with one torch thread as the CV runs use. Rounds alternate between the
architectures so a change in machine load hits them alike; the median step time, the steps of one
epoch of the 5-fold CV (``train_crops_per_track`` crops of the ~223 training clips) and their
product, the epoch's training seconds without its validation pass, are printed with the ratio to
``cnn`` and the load average. The CV runs' own s/epoch (``compare``) are noisier: they ran beside
other jobs whose load came and went.

    python bench/bench_train_step.py [--configs cnn,wavelet,raw1d,resnet18-study,resnet34] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.audio import load_mono  # noqa: E402

SHARED = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
CLIP = SHARED / "data" / "gtzan-mini" / "rock" / "rock.00005.flac"
TRAIN_CLIPS = 223
"""Training clips in one fold of the 5-fold artist-grouped CV over the 372 shared clips (222-223)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="cnn,wavelet,raw1d,resnet18-study,resnet34")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per architecture per round")
    args = ap.parse_args(argv)
    try:
        import torch

        from training.experiment import build, load_config
    except ImportError:
        print("streamtag: error: bench_train_step needs the training extras (pip install -e '.[train]')",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    labels = [f"g{i}" for i in range(10)]
    setups = {}
    for name in args.configs.split(","):
        rc = load_config(REPO / "configs" / "train" / f"{name}.toml", None)
        model = build(rc, labels).train()
        opt = torch.optim.AdamW(model.parameters(), lr=rc.train.lr, weight_decay=rc.train.weight_decay)
        x = load_mono(CLIP, model.frontend_params.sample_rate)
        bs, w = rc.train.batch_size, model.window_samples
        starts = np.linspace(0, len(x) - w, bs).astype(int)
        wave = torch.from_numpy(np.stack([x[s:s + w] for s in starts]).astype(np.float32))
        target = torch.arange(bs) % len(labels)
        steps = math.ceil(TRAIN_CLIPS * rc.data_cfg.train_crops_per_track / bs)
        setups[name] = (rc, model, opt, wave, target, steps)

    def step(model, opt, wave, target) -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(wave), target).backward()
        opt.step()

    times: dict[str, list[float]] = {n: [] for n in setups}
    for _, model, opt, wave, target, _ in setups.values():
        step(model, opt, wave, target)  # warm-up
    for _ in range(args.rounds):
        for name, (_, model, opt, wave, target, _) in setups.items():
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step(model, opt, wave, target)
                times[name].append(time.perf_counter() - t0)
    base = float(np.median(times[next(iter(setups))]))
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; torch threads 1; "
          f"{args.rounds} rounds x {args.steps} steps; baseline {next(iter(setups))}")
    print("| config | arch | params | batch | s/step | x baseline | steps/epoch | train s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (rc, model, _, _, _, steps) in setups.items():
        med = float(np.median(times[name]))
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"| {name} | {rc.arch} | {params:.2f} M | {rc.train.batch_size} | {med:.2f} | {med / base:.2f} | "
              f"{steps} | {med * steps:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
