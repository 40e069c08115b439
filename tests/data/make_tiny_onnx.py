"""Regenerate ``tests/data/tiny.onnx`` (needs torch; the tests themselves only read the file).

A tiny real ONNX graph: waveform ``(batch, 16000)`` -> logits ``(batch, 10)`` from 16 frame
log-energies through one linear layer (seeded). Run: ``python tests/data/make_tiny_onnx.py``.
"""

import warnings
from pathlib import Path

import torch

WINDOW, N_LABELS = 16000, 10


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.frames = 16
        self.head = torch.nn.Linear(self.frames, N_LABELS)

    def forward(self, waveform):
        x = waveform.reshape(waveform.shape[0], self.frames, -1)
        return self.head(torch.log(x.square().mean(-1) + 1e-6))


if __name__ == "__main__":
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(Tiny().eval(), (torch.zeros(2, WINDOW),), str(Path(__file__).with_name("tiny.onnx")),
                          input_names=["waveform"], output_names=["logits"],
                          dynamic_axes={"waveform": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
