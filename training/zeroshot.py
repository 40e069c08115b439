"""Build, measure and export ``audioset-zeroshot``: the AudioSet net restricted to the ten genre outputs.

``python -m training.zeroshot [--out models]`` scores it on the shared real clips (whole clip as one
input, and mean logits of 3-s windows at 1.5-s hop), then exports it with those figures and the
AudioSet ``speech`` output beside the genre logits (:class:`~training.models.mobilenet.DetectorNet`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from streamtag.audio import load_mono

from .data import discover
from .evaluate import scores
from .export import export_onnx
from .models import build_model
from .models.mobilenet import GENRE_TO_AUDIOSET, DetectorNet, shared_dir
from .models.mobilenet import GTZAN_GENRES as GENRES

SOURCES = ("gtzan-mini", "extra-4q")
"""Shared data folders the figures are measured on."""
HOP_SECONDS = 1.5

log = logging.getLogger("training.zeroshot")  # not __name__: also run as __main__


def clip_logits(model, wave: np.ndarray, hop_seconds: float = HOP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """(logits of the whole clip as one input, mean logits of its windows at ``hop_seconds``)."""
    w, hop = model.window_samples, int(round(hop_seconds * model.frontend_params.sample_rate))
    if len(wave) < w:
        wave = np.pad(wave, (0, w - len(wave)))
    windows = np.stack([wave[s:s + w] for s in range(0, len(wave) - w + 1, hop)])
    with torch.no_grad():
        whole = model(torch.from_numpy(wave)[None])[0].numpy()
        mean = model(torch.from_numpy(windows)).numpy().mean(axis=0)
    return whole, mean


def _figures(truth: list[int], pred: list[int]) -> dict:
    s = scores(np.array(truth), np.array(pred), GENRES)
    return {"tracks": s["n"], "correct": int(round(s["acc"] * s["n"])), "accuracy": s["acc"],
            "macro_accuracy": s["macro_recall"], "per_class": s["per_class_acc"]}


def measure(model, roots: Sequence[str | Path]) -> dict:
    """Track-level figures per data source, both as whole clips and 3-s windows (hop 1.5 s)."""
    out = {}
    tracks = discover(roots, GENRES)
    for source in dict.fromkeys(t.source for t in tracks):
        truth, whole, windows = [], [], []
        for t in (t for t in tracks if t.source == source):
            lw, lm = clip_logits(model, load_mono(t.path, model.frontend_params.sample_rate))
            truth.append(GENRES.index(t.genre))
            whole.append(int(lw.argmax()))
            windows.append(int(lm.argmax()))
        out[source] = {"whole_clip": _figures(truth, whole), "windows_3s_hop_1.5s": _figures(truth, windows)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.zeroshot", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("training").setLevel(logging.INFO)
    model = build_model("audioset-zeroshot", GENRES).eval()
    figures = measure(model, [shared_dir() / "data" / src for src in SOURCES])
    for source, f in figures.items():
        log.info("%s: whole clip %d/%d, windows %d/%d (macro %.3f)", source, f["whole_clip"]["correct"],
                     f["whole_clip"]["tracks"], f["windows_3s_hop_1.5s"]["correct"],
                     f["windows_3s_hop_1.5s"]["tracks"], f["windows_3s_hop_1.5s"]["macro_accuracy"])
    metrics = {"protocol": "untrained: argmax over the ten AudioSet genre logits per track; audio soxr-HQ "
                           "resampled to 32 kHz; whole clip as one input, or mean logits of 3-s windows at 1.5-s hop",
               "zero_shot": figures}
    training = {"trained": False, "data": "none (AudioSet-pretrained EfficientAT mn04_as, classifier rows "
                                          + ", ".join(f"{g}={a}" for g, a in GENRE_TO_AUDIOSET.items()) + ")"}
    provenance = {"source": "EfficientAT mn04_as (F. Schmid), AudioSet mAP 0.432",
                  "url": "https://github.com/fschmid56/EfficientAT"}
    export_onnx(DetectorNet(model), Path(args.out), "audioset-zeroshot", metrics=metrics, training=training,
                provenance=provenance)


if __name__ == "__main__":
    main()
