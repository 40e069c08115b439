"""Vote: ema/soft/hard smoothing, hysteresis (--confirm), silence reset."""

import numpy as np
import pytest

from streamtag.vote import SILENCE, Vote, rms_dbfs

LABELS = ("a", "b", "c")


def p(label, strength=0.8):
    v = np.full(3, (1 - strength) / 2, dtype=np.float32)
    v[LABELS.index(label)] = strength
    return v


@pytest.mark.parametrize("mode", ["ema", "soft", "hard"])
def test_one_window_blip_does_not_change_the_genre(mode):
    vote = Vote(LABELS, mode=mode, window=3, alpha=0.9, confirm=2)
    genres = [vote.update(p(x)).genre for x in "aaabaa"]
    assert genres == ["a"] * 6


def test_change_needs_confirm_consecutive_leading_windows():
    vote = Vote(LABELS, mode="ema", alpha=1.0, confirm=3)
    verdicts = [vote.update(p(x)) for x in "aabbbb"]
    assert [v.genre for v in verdicts] == ["a", "a", "a", "a", "b", "b"]
    assert [v.raw_genre for v in verdicts] == list("aabbbb")
    assert [v.changed for v in verdicts] == [True, False, False, False, True, False]
    assert verdicts[4].previous == "a"


def test_interrupted_streak_starts_over():
    vote = Vote(LABELS, mode="ema", alpha=1.0, confirm=2)
    assert [vote.update(p(x)).genre for x in "abcbb"] == ["a", "a", "a", "a", "b"]


def test_hard_vote_reports_vote_share_as_confidence():
    vote = Vote(LABELS, mode="hard", window=4, confirm=1)
    for x in "aab":
        v = vote.update(p(x, 0.5))
    assert v.genre == "a" and v.confidence == pytest.approx(2 / 3)


def test_soft_vote_is_the_mean_of_the_last_n():
    vote = Vote(LABELS, mode="soft", window=2, confirm=1)
    vote.update(p("a", 0.9))
    vote.update(p("b", 0.6))
    v = vote.update(p("b", 0.6))
    assert v.genre == "b" and v.confidence == pytest.approx(0.6)


def test_silence_resets_and_the_next_window_sets_the_genre_at_once():
    vote = Vote(LABELS, mode="ema", alpha=0.1, confirm=5)
    for _ in range(5):
        vote.update(p("a"))
    s = vote.silence()
    assert (s.genre, s.raw_genre, s.changed) == (SILENCE, SILENCE, True)
    v = vote.update(p("c"))
    assert v.genre == "c" and v.previous == SILENCE and v.confidence == pytest.approx(0.8)


def test_set_mode_restarts_the_vote():
    vote = Vote(LABELS, mode="ema", alpha=0.1, confirm=9)
    for _ in range(5):
        vote.update(p("a"))
    vote.set_mode("hard")
    assert vote.update(p("b")).genre == "b"
    with pytest.raises(ValueError):
        vote.set_mode("median")


def test_rms_dbfs():
    assert rms_dbfs(np.ones(100, dtype=np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.full(100, 0.1, dtype=np.float32)) == pytest.approx(-20.0)
    assert rms_dbfs(np.zeros(100, dtype=np.float32)) == pytest.approx(-200.0)


def test_talk_is_reported_after_confirm_windows_and_resets_the_vote():
    vote = Vote(LABELS, mode="soft", window=5, confirm=2)
    seq = [vote.update(p("a")), vote.update(p("a")), vote.speech(0.9), vote.update(p("a")),   # a lone talk blip
           vote.speech(0.8), vote.speech(0.7), vote.speech(0.9), vote.update(p("b"))]
    assert [v.genre for v in seq] == ["a", "a", "a", "a", "a", "speech", "speech", "b"]
    assert [v.raw_genre for v in seq][2] == "speech" and seq[2].confidence == seq[1].confidence
    assert seq[5].changed and seq[5].confidence == 0.7
    assert seq[7].changed and seq[7].previous == "speech"          # the vote was reset: b wins at once
    first = Vote(LABELS, confirm=3)
    assert first.speech(0.9).genre == "speech"                     # nothing to hold on to at the start


def test_min_confidence_reports_unknown_under_the_same_hysteresis():
    vote = Vote(LABELS, mode="soft", window=1, confirm=2, min_confidence=0.6)
    seq = [vote.update(p("a", 0.9)), vote.update(p("a", 0.5)), vote.update(p("a", 0.5)), vote.update(p("b", 0.9)),
           vote.update(p("b", 0.9))]
    assert [v.genre for v in seq] == ["a", "a", "unknown", "unknown", "b"]
    assert seq[2].changed and seq[2].confidence == pytest.approx(0.5)  # the leader's, under the threshold
    assert Vote(LABELS, min_confidence=0.99).update(p("c", 0.98)).genre == "unknown"
    assert Vote(LABELS).update(p("c", 0.34)).genre == "c"                # 0: always a genre
