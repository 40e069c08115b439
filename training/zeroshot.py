"""Build, measure and export the untrained genre models, the rows every trained model must beat.

``audioset-zeroshot``: the AudioSet net restricted to its ten genre outputs, exported with the AudioSet
``speech`` output beside the genre logits (:class:`~training.models.mobilenet.DetectorNet`).
``musicnn-zeroshot``: the musicnn MSD tagger at its own 16-kHz front end, each genre scored by the best of
the MSD tags that name it (:data:`training.models.musicnn.MSD_GENRE_TAGS`; no tag names classical, disco or
reggae). ``python -m training.zeroshot [--model NAME] [--out models]`` scores it on the shared real clips
(mean logits of 3-s windows at 1.5-s hop; for the AudioSet net also the whole clip as one input), then
exports it with those figures.
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
from .models.musicnn import ABSENT_LOGIT, MSD_GENRE_TAGS
from .models.musicnn import licence_text as musicnn_licence
from .models.musicnn import weights_path as musicnn_weights

SOURCES = ("gtzan-mini", "extra-4q", "emotify-dev")
"""Shared data folders the figures are measured on."""
MODELS = ("audioset-zeroshot", "musicnn-zeroshot")
HOP_SECONDS = 1.5

log = logging.getLogger("training.zeroshot")  # not __name__: also run as __main__


def clip_logits(model, wave: np.ndarray, hop_seconds: float = HOP_SECONDS,
                whole_clip: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """(logits of the whole clip as one input or None, mean logits of its windows at ``hop_seconds``)."""
    w, hop = model.window_samples, int(round(hop_seconds * model.frontend_params.sample_rate))
    if len(wave) < w:
        wave = np.pad(wave, (0, w - len(wave)))
    windows = np.stack([wave[s:s + w] for s in range(0, len(wave) - w + 1, hop)])
    with torch.no_grad():
        whole = model(torch.from_numpy(wave)[None])[0].numpy() if whole_clip else None
        mean = model(torch.from_numpy(windows)).numpy().mean(axis=0)
    return whole, mean


def _figures(truth: list[int], pred: list[int]) -> dict:
    s = scores(np.array(truth), np.array(pred), GENRES)
    return {"tracks": s["n"], "correct": int(round(s["acc"] * s["n"])), "accuracy": s["acc"],
            "macro_accuracy": s["macro_recall"], "per_class": s["per_class_acc"]}


def measure(model, roots: Sequence[str | Path], whole_clip: bool = True) -> dict:
    """Track-level figures per data source: 3-s windows (hop 1.5 s) and, with ``whole_clip``, whole clips."""
    out = {}
    tracks = discover(roots, GENRES)
    for source in dict.fromkeys(t.source for t in tracks):
        truth, whole, windows = [], [], []
        for t in (t for t in tracks if t.source == source):
            lw, lm = clip_logits(model, load_mono(t.path, model.frontend_params.sample_rate), whole_clip=whole_clip)
            truth.append(GENRES.index(t.genre))
            whole.append(int(lw.argmax()) if lw is not None else -1)
            windows.append(int(lm.argmax()))
        out[source] = {"windows_3s_hop_1.5s": _figures(truth, windows)}
        if whole_clip:
            out[source]["whole_clip"] = _figures(truth, whole)
    return out


def export_zero_shot(name: str, out: str | Path) -> None:
    """Measure and export one of :data:`MODELS` into ``out``."""
    model = build_model(name, GENRES).eval()
    audioset = name == "audioset-zeroshot"
    figures = measure(model, [shared_dir() / "data" / src for src in SOURCES], whole_clip=audioset)
    for source, f in figures.items():
        w = f["windows_3s_hop_1.5s"]
        log.info("%s %s: windows %d/%d (macro %.3f)", name, source, w["correct"], w["tracks"], w["macro_accuracy"])
    rate = model.frontend_params.sample_rate // 1000
    metrics = {"protocol": f"untrained: argmax over the ten genre logits per track; audio soxr-HQ resampled to "
                           f"{rate} kHz; mean logits of 3-s windows at 1.5-s hop"
                           + ("; and the whole clip as one input" if audioset else ""),
               "zero_shot": figures}
    if audioset:
        mapping = ", ".join(f"{g}={a}" for g, a in GENRE_TO_AUDIOSET.items())
        training = {"trained": False, "data": f"none (AudioSet-pretrained EfficientAT mn04_as, classifier rows {mapping})"}
        provenance = {"source": "EfficientAT mn04_as (F. Schmid), AudioSet mAP 0.432",
                      "url": "https://github.com/fschmid56/EfficientAT"}
        export_onnx(DetectorNet(model), Path(out), name, metrics=metrics, training=training, provenance=provenance)
        return
    absent = [g for g in GENRES if g not in MSD_GENRE_TAGS]
    training = {"trained": False, "genre_tags": {g: list(MSD_GENRE_TAGS.get(g, ())) for g in GENRES},
                "data": "none (musicnn MSD tagger; each genre's logit is the highest logit of the last.fm tags that "
                        f"name it; {', '.join(absent)} have no tag and get the constant logit {ABSENT_LOGIT:g})"}
    provenance = {"source": "musicnn MSD tagger (J. Pons & X. Serra, MTG-UPF 2019)",
                  "url": "https://github.com/jordipons/musicnn"}
    export_onnx(model, Path(out), name, metrics=metrics, training=training, provenance=provenance,
                licence=musicnn_licence(), weights=[musicnn_weights("msd")])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.zeroshot", description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODELS, default=MODELS[0], help="which zero-shot model")
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    args = ap.parse_args(argv)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("training").setLevel(logging.INFO)
    export_zero_shot(args.model, args.out)


if __name__ == "__main__":
    main()
