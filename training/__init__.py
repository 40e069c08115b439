"""Offline training: torch models, evaluation and ONNX export into ``models/`` (needs the ``[train]`` extra)."""
