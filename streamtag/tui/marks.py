"""Per-genre marks: a unique letter (for NO_COLOR / text readers) and a colour for each label."""

from __future__ import annotations

from collections.abc import Sequence

from ..vote import SILENCE, SPEECH, UNKNOWN

STATES = {SILENCE: ("~", "grey42"), SPEECH: ("*", "grey70"), UNKNOWN: ("?", "grey58")}
"""How the vote's own verdicts (not model labels) are drawn: mark and colour."""

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
"""Ten distinguishable colours (Tableau 10), reused cyclically beyond ten labels."""


def genre_letters(labels: Sequence[str]) -> dict[str, str]:
    """Give each label a distinct upper-case mark: its first letter, else its next unused letter.

    ``blues, classical, country`` -> ``B, C, O``. Falls back to digits and then ``#``; the vote's
    ``silence``, ``speech`` and ``unknown`` are ``~``, ``*`` and ``?``.
    """
    out: dict[str, str] = {state: mark for state, (mark, _) in STATES.items()}
    used: set[str] = set(out.values())
    for label in labels:
        if label in STATES:
            continue
        candidates = [c.upper() for c in label if c.isalnum()] + list("0123456789")
        mark = next((c for c in candidates if c not in used), "#")
        used.add(mark)
        out[label] = mark
    return out


def genre_colours(labels: Sequence[str]) -> dict[str, str]:
    """Colour of each label by its position in the model's label order (and the vote's states' greys)."""
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    colours.update({state: colour for state, (_, colour) in STATES.items()})
    return colours
