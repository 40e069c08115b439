"""`streamtag models` picks a headline accuracy out of differently nested metadata metrics."""

from streamtag.cli import _accuracy


def test_prefers_a_test_track_figure_and_reads_means():
    metrics = {"protocol": "cv", "valid_track_acc": {"mean": 0.54, "std": 0.07},
               "test_window_acc": {"mean": 0.55}, "test_track_soft_acc": {"mean": 0.65, "n": 3}}
    assert _accuracy(metrics) == ("test_track_soft_acc", 0.65)


def test_nested_track_accuracy_and_flat_figures():
    assert _accuracy({"cv_mean": {"all": {"window_acc": 0.70, "track_acc": 0.77}}}) == ("cv_mean.all.track_acc", 0.77)
    assert _accuracy({"zero_shot": {"whole": {"accuracy": 0.77, "correct": 77}}}) == ("zero_shot.whole.accuracy", 0.77)
    assert _accuracy({"loss": 0.3, "flag_acc": True}) is None
