"""The re-implemented AudioSet net reproduces the published zero-shot figures on gtzan-mini."""

import pytest

from training.models import build_model
from training.models.mobilenet import GTZAN_GENRES, shared_dir
from training.zeroshot import measure


@pytest.mark.slow
def test_zero_shot_gtzan_mini_figures_match_the_shared_readme():
    model = build_model("audioset-zeroshot", GTZAN_GENRES).eval()
    figures = measure(model, [shared_dir() / "data/gtzan-mini"])["gtzan-mini"]
    # shared/README.md: 77/100 whole 30-s clips, 73/100 with mean logits of 3-s windows (hop 1.5 s), soxr HQ
    assert figures["whole_clip"]["correct"] == 77
    assert figures["windows_3s_hop_1.5s"]["correct"] == 73
