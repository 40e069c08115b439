"""Throughput of ``streamtag tag`` on gtzan-mini against a seed-style pipeline, in one run.

streamtag: the real CLI (``python -m streamtag tag --json``) as a subprocess on every file --
decode, soxr resample, 3-s windows at the hop, windows of several files batched into one ONNX
Runtime call (log-mel inside the graph). Seed-style baseline: per file ``librosa.load`` at the
model rate, then per window a librosa mel spectrogram in numpy and one torch forward of the same
network (``training.models.build_model``), one window at a time. Both see the same windows.

    nice -n 10 python bench/bench_tag.py [--data ../shared/data/gtzan-mini] [--model audioset-zeroshot]
        [--hop 1.0] [--baseline-per-genre N (default 1; 0 = all 100 files)] [--no-baseline]

Prints seconds, x real time and track accuracy of each, and the speed ratio. By default the
(slow) baseline runs on one file per genre and streamtag is timed again on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.modelmeta import resolve_model  # noqa: E402


def gtzan_files(root: Path) -> list[Path]:
    """Every audio file in a GTZAN-layout folder (``<genre>/<file>``), sorted."""
    return sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".flac", ".wav", ".mp3", ".ogg", ".au"))


def run_streamtag(files: list[Path], model: str, hop: float) -> tuple[float, dict[str, str]]:
    """Wall seconds of the CLI over all files (process start included) and its genre per path."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "streamtag", "tag", "--json", "--model", model, "--hop", str(hop),
                        *map(str, files)], capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"streamtag tag failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    return wall, {o["path"]: o["genre"] for o in map(json.loads, r.stdout.splitlines())}


def run_seed_style(files: list[Path], model: str, hop: float) -> tuple[float, dict[str, str]] | str:
    """Wall seconds of the librosa + torch per-window pipeline, or why it was skipped.

    ``librosa.load`` per file, then per window a librosa mel spectrogram and the torch network on it. For
    the fused models (``transfer:`` archs) that is each backbone's mel (musicnn's after a librosa
    resample to 16 kHz) and network, with a linear head on the joined embeddings: the shipped head's
    weights live only in the ONNX file, and its cost is a small fraction of the backbones'.
    """
    try:
        import librosa
        import torch

        import training  # noqa: F401 - the training extra builds the torch networks
    except ImportError as exc:
        return f"skipped: {exc}"
    _, meta = resolve_model(model)
    try:
        window_logits = _torch_network(meta)
    except (ValueError, FileNotFoundError) as exc:
        return f"skipped: cannot build {meta.arch!r} in torch ({exc})"
    rate, size = meta.sample_rate, meta.window_samples
    step = int(round(hop * rate))
    with torch.inference_mode():  # warm-up, not timed: librosa's numba kernels compile on first use
        window_logits(librosa.load(files[0], sr=rate, mono=True, duration=meta.window_seconds)[0][:size])
    t0 = time.perf_counter()
    genres = {}
    with torch.inference_mode():
        for f in files:
            y, _ = librosa.load(f, sr=rate, mono=True)
            starts = range(0, max(len(y) - size, 0) + 1, step)
            logits = []
            for s in starts:
                w = np.pad(y[s:s + size], (0, max(0, size - len(y[s:s + size]))))
                logits.append(window_logits(w))
            genres[str(f)] = meta.labels[int(np.argmax(np.mean(logits, axis=0)))]
    return time.perf_counter() - t0, genres


def _librosa_mel(w: np.ndarray, rate: int, fe) -> np.ndarray:
    """The seed's per-window front end: pre-emphasis and a librosa mel spectrogram, log-compressed."""
    import librosa

    if fe.resampled_to:
        w, rate = librosa.resample(w, orig_sr=rate, target_sr=fe.resampled_to), fe.resampled_to
    w = np.append(w[:1], w[1:] - fe.preemphasis * w[:-1])
    mel = librosa.feature.melspectrogram(y=w, sr=rate, n_fft=fe.n_fft, hop_length=fe.hop_length,
                                         win_length=fe.win_length, window="hann", center=fe.center,
                                         pad_mode=fe.pad_mode, power=2.0, n_mels=fe.n_mels, fmin=fe.fmin,
                                         fmax=fe.fmax)
    return ((np.log(mel + fe.log_offset) + fe.norm_shift) / fe.norm_scale).astype(np.float32)


def _torch_network(meta):
    """``window (samples,) -> logits``: librosa mel per window, then the torch network (see
    :func:`run_seed_style`)."""
    import torch

    if meta.arch.startswith("transfer:"):
        from training.backbones import build_all

        backbones = build_all(meta.arch.split(":", 1)[1].split("+"))
        shapes = [tuple(b.frontend(torch.zeros(1, meta.window_samples)).shape) for b in backbones]
        head = torch.nn.Linear(sum(b.dim for b in backbones), len(meta.labels)).eval()

        def fused(w: np.ndarray) -> np.ndarray:
            embeddings = []
            for b, shape in zip(backbones, shapes):
                x = _librosa_mel(w, meta.sample_rate, b.frontend_params)[:, :shape[-1]]
                x = np.pad(x, ((0, 0), (0, shape[-1] - x.shape[1])))
                embeddings.append(b.embed(torch.from_numpy(x).reshape(shape)))
            return head(torch.cat(embeddings, dim=1))[0].numpy()
        return fused

    from training.models import build_model

    net = build_model(meta.arch, meta.labels).eval()
    return lambda w: net.backbone(torch.from_numpy(_librosa_mel(w, meta.sample_rate, meta.frontend))[None, None])[0].numpy()


def accuracy(genres: dict[str, str]) -> float:
    """Share of files whose genre is their folder's name."""
    return float(np.mean([Path(p).parent.name == g for p, g in genres.items()]))


def per_genre(files: list[Path], n: int) -> list[Path]:
    """The first ``n`` files of each genre folder (all files when ``n`` is 0)."""
    if n <= 0:
        return files
    seen: dict[str, int] = {}
    out = []
    for f in files:
        seen[f.parent.name] = seen.get(f.parent.name, 0) + 1
        if seen[f.parent.name] <= n:
            out.append(f)
    return out


def report(name: str, wall: float, audio_s: float, genres: dict[str, str], note: str) -> None:
    """One result line."""
    print(f"{name:<22}: {wall:7.1f} s  {audio_s / wall:7.1f} x real time  accuracy {accuracy(genres):.2f}  ({note})")


def main() -> None:
    shared = Path(os.environ.get("STREAMTAG_SHARED", REPO.parent / "shared"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared / "data" / "gtzan-mini")
    ap.add_argument("--model", default="audioset-zeroshot")
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--baseline-per-genre", type=int, default=1, metavar="N",
                    help="compare with the baseline on the first N files of each genre (0 = all files; "
                         "the baseline takes ~10 s per file on a busy 2-core machine)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    files = gtzan_files(args.data)
    if not files:
        sys.exit(f"no audio files under {args.data}")
    audio_s = sum(sf.info(f).duration for f in files)
    print(f"{len(files)} files, {audio_s:.0f} s of audio, model {args.model}, hop {args.hop} s, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    wall, genres = run_streamtag(files, args.model, args.hop)
    report("streamtag tag --json", wall, audio_s, genres, "all files; process start and model load included")
    if args.no_baseline:
        return
    subset = per_genre(files, args.baseline_per_genre)
    sub_s = sum(sf.info(f).duration for f in subset)
    if subset != files:
        print(f"comparison on {len(subset)} files ({args.baseline_per_genre} per genre, {sub_s:.0f} s of audio):")
        wall, genres = run_streamtag(subset, args.model, args.hop)
        report("streamtag tag --json", wall, sub_s, genres, "same files as the baseline")
    base = run_seed_style(subset, args.model, args.hop)
    if isinstance(base, str):
        print(f"seed-style baseline   : {base}")
        return
    bwall, bgenres = base
    report("seed-style baseline", bwall, sub_s, bgenres, "librosa.load + librosa mel per window + torch, one window at a time")
    print(f"speed-up              : {bwall / wall:.1f}x  (load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
