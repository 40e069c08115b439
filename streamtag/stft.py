"""STFT nodes of a model graph rewritten as Conv + MatMul, so ONNX Runtime computes them fast.

Every shipped graph starts with its log-mel front end, and ONNX Runtime's ``STFT`` kernel is slow
on CPU (over half of a MobileNet window's time) and absent on CUDA (the node falls back to the CPU,
with copies around it). :func:`lower_stft` replaces each real-input, one-sided ``STFT`` node whose
signal length, step and window are constant by the same transform in two dense stages (a
Cooley-Tukey split ``N = N1 * N2``, the window and the twiddle factors folded into the weights):

1. a grouped strided ``Conv`` over the signal seen as ``N2`` interleaved phases: for every frame, the
   length-``N1`` DFTs of the phases, windowed and twiddled (no framing copy: the stride does it);
2. one ``MatMul`` over the phases: the length-``N2`` DFTs, kept only for the one-sided bins.

The output has the node's own layout ``(batch, frames, bins, 2)``, so the rest of the graph is
untouched. About ``2 N (N1 + N2)`` multiply-adds per frame against ``2 N^2`` for a plain DFT matrix.
The model file is never changed: :class:`streamtag.engine.Engine` rewrites it in memory at load and
checks the result against the original graph.
"""

from __future__ import annotations

from math import gcd

import numpy as np

_DOMAINS = ("", "ai.onnx")


def lower_stft(model) -> int:
    """Rewrite, in place, every ``STFT`` node of ``model`` (an ``onnx.ModelProto``) that can be lowered.

    Returns how many were rewritten; the others are left as they are (complex input, two-sided
    output, a signal length that shape inference cannot fix, a window or step given at run time,
    or a frame length and step without a useful common factor).
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # Constant nodes feeding the STFT (some exporters use them)
        if node.op_type == "Constant" and node.domain in _DOMAINS and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    if not any(n.op_type == "STFT" and n.domain in _DOMAINS for n in graph.node):
        return 0
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for v in [*inferred.graph.value_info, *inferred.graph.input]:
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    nodes, added, lowered = [], [], 0
    for index, node in enumerate(graph.node):
        plan = _plan(node, consts, shapes)
        if plan is None:
            nodes.append(node)
            continue
        new_nodes, new_inits = _lowered(node, index, *plan)
        nodes.extend(new_nodes)
        added.extend(new_inits)
        lowered += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    return lowered


def _plan(node, consts, shapes):
    """``(signal length, step, window)`` when ``node`` is an STFT this module can lower, else None."""
    if node.op_type != "STFT" or node.domain not in _DOMAINS:
        return None
    attrs = {a.name: a.i for a in node.attribute}
    if attrs.get("onesided", 1) != 1:
        return None
    ins = list(node.input) + [""] * (4 - len(node.input))
    signal, step_name, window_name, length_name = ins[:4]
    shape = shapes.get(signal)
    if not shape or len(shape) != 3 or shape[1] is None or shape[2] != 1 or step_name not in consts:
        return None
    step = int(consts[step_name])
    if window_name:
        if window_name not in consts:
            return None
        window = np.asarray(consts[window_name], dtype=np.float64).reshape(-1)
    elif length_name and length_name in consts:
        window = np.ones(int(consts[length_name]))
    else:
        return None
    if length_name and (length_name not in consts or int(consts[length_name]) != len(window)):
        return None
    n = len(window)
    if step <= 0 or n < 2 or shape[1] < n:
        return None
    return shape[1], step, window


def split(n: int, step: int) -> tuple[int, int]:
    """``(N1, N2)`` with ``N1 * N2 == n`` and ``N2`` dividing ``step``, the split with the least work
    (``N2 == 1`` when there is no useful one)."""
    g = gcd(n, step)
    best = (n, 1)
    for n2 in range(2, g + 1):
        if g % n2 == 0 and (n // n2 + n2) < (best[0] + best[1]):
            best = (n // n2, n2)
    return best


def _lowered(node, index: int, length: int, step: int, window: np.ndarray):
    """Nodes and initializers computing ``node``'s output from its signal with Conv + MatMul."""
    from onnx import helper, numpy_helper

    n = len(window)
    n1, n2 = split(n, step)
    frames = (length - n) // step + 1
    bins = n // 2 + 1
    k2 = -(-bins // n1)  # second-stage outputs needed to reach the last one-sided bin
    used = (frames - 1) * step + n  # signal samples the frames cover (a multiple of n2)
    prefix = f"{node.name or 'stft'}_lowered{index}_"
    nodes, inits = [], []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, f"{prefix}const_{name}"))
        return inits[-1].name

    def add(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output if output == node.output[0] else prefix + output], **attrs))
        return nodes[-1].output[0]

    def ints(*v: int) -> np.ndarray:
        return np.array(v, dtype=np.int64)

    # signal (B, length, 1) -> the n2 phases (B, n2, used / n2): x[n2 * m + r] is phase r, position m
    x = add("Slice", [node.input[0], const("start", ints(0)), const("end", ints(used)), const("axis1", ints(1))],
            "signal")
    x = add("Reshape", [x, const("phases_shape", ints(0, used // n2, n2))], "phases_t")
    x = add("Transpose", [x], "phases", perm=[0, 2, 1])
    # stage 1: per phase r, frame f and k1: sum over j of w[n2 j + r] x[f step + n2 j + r] e^{-2 pi i (j k1 / n1 + r k1 / n)}
    j, k1, r = np.arange(n1), np.arange(n1), np.arange(n2)
    angle = -2 * np.pi * (np.outer(k1, j)[None] / n1 + (np.outer(r, k1) / n)[:, :, None])  # (r, k1, j)
    w = window.reshape(n1, n2).T[:, None, :]  # (r, 1, j): w[n2 j + r]
    weights = np.stack([np.cos(angle) * w, np.sin(angle) * w], axis=1)  # (r, re/im, k1, j)
    y = add("Conv", [x, const("stage1", weights.reshape(n2 * 2 * n1, 1, n1).astype(np.float32))], "stage1",
            group=n2, kernel_shape=[n1], strides=[step // n2])  # (B, (r, re/im, k1), frames)
    y = add("Reshape", [y, const("stage1_shape", ints(0, 2 * n2, n1 * frames))], "stage1_flat")
    # stage 2: bin k1 + n1 k2 = sum over r of stage1[r, k1] e^{-2 pi i r k2 / n2}, complex: [re; im] rows
    b = -2 * np.pi * np.outer(r, np.arange(k2)) / n2  # (r, k2)
    cos, sin = np.cos(b).T, np.sin(b).T  # (k2, r)
    m = np.zeros((2, k2, n2, 2))
    m[0, :, :, 0], m[0, :, :, 1] = cos, -sin
    m[1, :, :, 0], m[1, :, :, 1] = sin, cos
    z = add("MatMul", [const("stage2", m.reshape(2 * k2, 2 * n2).astype(np.float32)), y], "stage2")
    z = add("Reshape", [z, const("bins_shape", ints(0, 2, k2 * n1, frames))], "bins_all")  # bin = n1 k2 + k1
    z = add("Slice", [z, const("bin0", ints(0)), const("bin_end", ints(bins)), const("axis2", ints(2))], "bins")
    add("Transpose", [z], node.output[0], perm=[0, 3, 2, 1])  # (B, frames, bins, re/im): STFT's layout
    return nodes, inits
