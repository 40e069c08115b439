"""streamtag: a streaming, real-time music-genre tagger (numpy + ONNX Runtime, no torch)."""

__version__ = "0.1.0"
