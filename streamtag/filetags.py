"""``streamtag tag --write-tags``: the genre into a file's own tags, with mutagen.

Written: the genre (ID3 ``TCON``, Vorbis ``GENRE``, MP4 ``©gen``) and one comment
``streamtag: <genre> <confidence> (model <name>)`` (ID3 ``COMM`` described ``streamtag``, a Vorbis
``COMMENT`` value or an MP4 ``©cmt`` value; other comments are kept). A file whose tags already say
so is left untouched.
"""

from __future__ import annotations

from pathlib import Path

from .audio import decode_error
from .errors import UsageError

COMMENT_PREFIX = "streamtag:"
"""Start of the comment streamtag writes (and replaces on the next run)."""

GENRE_NAMES = {"hiphop": "Hip-Hop", "rnb": "R&B", "edm": "EDM"}
"""Label -> tag text where title case is wrong; other labels are title-cased (``metal`` -> ``Metal``)."""


def genre_name(label: str) -> str:
    """The text written as the genre for a model label."""
    return GENRE_NAMES.get(label, label.replace("_", " ").title())


def comment_text(genre: str, confidence: float, model: str) -> str:
    """The confidence comment."""
    return f"{COMMENT_PREFIX} {genre} {confidence:.2f} (model {model})"


def _ours(comments: list[str]) -> list[str]:
    return [c for c in comments if not str(c).startswith(COMMENT_PREFIX)]


def write_genre(path: str | Path, label: str, confidence: float, model: str, dry_run: bool = False) -> str:
    """Write the genre and comment into ``path``'s tags; returns a one-line account of what was (or would be) done.

    Raises :class:`UsageError` for a format mutagen cannot tag or a failed write.
    """
    import mutagen
    from mutagen._vorbis import VComment
    from mutagen.id3 import COMM, ID3, TCON
    from mutagen.mp4 import MP4Tags

    genre, comment = genre_name(label), comment_text(label, confidence, model)
    try:
        f = mutagen.File(path)
        if f is None:
            raise UsageError(f"{path}: cannot write tags (format not supported)")
        if f.tags is None:
            f.add_tags()
        tags = f.tags
        if isinstance(tags, ID3):
            old = tags.get("TCON")
            old_genre = old.text[0] if old and old.text else None
            ours = tags.getall("COMM:streamtag:eng")
            same = old_genre == genre and len(ours) == 1 and ours[0].text == [comment]
            if not same and not dry_run:
                tags.setall("TCON", [TCON(encoding=3, text=[genre])])
                tags.setall("COMM:streamtag:eng", [COMM(encoding=3, lang="eng", desc="streamtag", text=[comment])])
        elif isinstance(tags, (VComment, MP4Tags)):
            gkey, ckey = ("©gen", "©cmt") if isinstance(tags, MP4Tags) else ("GENRE", "COMMENT")
            old_genre = (tags.get(gkey) or [None])[0]
            comments = _ours(list(tags.get(ckey) or [])) + [comment]
            same = old_genre == genre and list(tags.get(ckey) or []) == comments
            if not same and not dry_run:
                tags[gkey] = [genre]
                tags[ckey] = comments
        else:
            raise UsageError(f"{path}: cannot write tags ({type(tags).__name__} tags not supported)")
        if not same and not dry_run:
            f.save()
    except UsageError:
        raise
    except Exception as exc:  # mutagen raises many types (MutagenError, OSError, struct errors) for bad files
        raise UsageError(f"{path}: cannot write tags ({decode_error(exc)})") from None
    was = f" (was {old_genre})" if old_genre and old_genre != genre else ""
    if same:
        return f"{path}: tags already say GENRE={genre}"
    return f"{path}: {'would write' if dry_run else 'wrote'} GENRE={genre}{was}, comment {comment!r}"
