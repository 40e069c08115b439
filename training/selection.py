"""Choosing among head candidates on validation folds only, with a nested estimate of that choice.

Every candidate (a zero-shot answer or a head config) has, per fold assignment (fold seed) and per
outer fold, its track votes on that fold's validation tracks and on its test tracks. The chosen
candidate is the one with the highest validation macro track accuracy, pooled over the validation
folds of an assignment and averaged over assignments; the test folds are never consulted. The
nested estimate repeats the choice inside each outer fold on that fold's validation votes alone and
pools the picked candidates' test votes: what the whole procedure, choice included, scores.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .evaluate import scores

TIE = 0.005
"""Validation macro accuracies closer than this tie; the tie goes to the cheaper candidate (its ``rank``)."""

Votes = dict[str, list[int]]
"""``{"track": [...], "label": [...], "soft": [...]}``: one soft-voted prediction per track."""


def pool_votes(parts: Sequence[Votes]) -> Votes:
    """Concatenate several folds' votes."""
    return {k: [x for p in parts for x in p[k]] for k in ("track", "label", "soft")}


def by_source(votes: Votes, sources: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Track accuracy, macro accuracy and per-class accuracy of soft votes, over all tracks and per source."""
    label, soft = np.asarray(votes["label"]), np.asarray(votes["soft"])
    src = np.asarray(sources)[np.asarray(votes["track"], dtype=np.int64)]
    out = {}
    for name in ["all", *sorted(set(src.tolist()))]:
        m = np.ones(len(src), bool) if name == "all" else src == name
        s = scores(label[m], soft[m], labels)
        out[name] = {"tracks": s["n"], "acc": s["acc"], "macro_acc": s["macro_recall"], "per_class": s["per_class_acc"],
                     "confusion": s["confusion"]}
    return out


def mean_nested(items: Sequence[Any]) -> Any:
    """Element-wise mean of equally shaped nested dicts/lists of numbers (keys missing somewhere are dropped)."""
    if isinstance(items[0], dict):
        return {k: mean_nested([i[k] for i in items]) for k in items[0] if all(k in i for i in items)}
    return np.mean(items, axis=0).tolist() if isinstance(items[0], list) else float(np.mean(items))


def select(candidates: Sequence[dict[str, Any]], sources: Sequence[str], labels: Sequence[str],
           rank: Callable[[dict[str, Any]], tuple]) -> dict[str, Any]:
    """Choose among ``candidates`` on validation folds; returns the table, the choice and the nested estimate.

    Each candidate: ``{"name", "config", "folds": {fold_seed: [{"valid": Votes, "test": Votes}, ...]}}``,
    every candidate with the same fold seeds and folds. ``rank(candidate)`` orders ties (smaller first).
    """
    seeds = sorted(candidates[0]["folds"])
    for c in candidates:
        if sorted(c["folds"]) != seeds:
            raise ValueError(f"{c['name']}: fold seeds {sorted(c['folds'])}, others have {seeds}")

    def macro(v: Votes) -> float:
        return scores(np.asarray(v["label"]), np.asarray(v["soft"]), labels)["macro_recall"]

    table = []
    for c in candidates:
        valid = mean_nested([by_source(pool_votes([f["valid"] for f in c["folds"][s]]), sources, labels) for s in seeds])
        test = mean_nested([by_source(pool_votes([f["test"] for f in c["folds"][s]]), sources, labels) for s in seeds])
        table.append({"name": c["name"], "config": c["config"], "runs": c.get("runs", []), "valid": valid,
                      "test": test, "valid_macro_acc": valid["all"]["macro_acc"]})
    best = max(t["valid_macro_acc"] for t in table)
    chosen = min((c for c, t in zip(candidates, table) if t["valid_macro_acc"] >= best - TIE),
                 key=lambda c: (rank(c), -next(t["valid_macro_acc"] for t in table if t["name"] == c["name"])))
    picks, nested = [], []
    for s in seeds:
        parts = []
        for i in range(len(candidates[0]["folds"][s])):
            pick = max(candidates, key=lambda c: (macro(c["folds"][s][i]["valid"]), [-x for x in rank(c)]))
            picks.append(pick["name"])
            parts.append(pick["folds"][s][i]["test"])
        nested.append(by_source(pool_votes(parts), sources, labels))
    return {"fold_seeds": seeds, "chosen": chosen["name"], "chosen_config": chosen["config"],
            "nested": {"test": mean_nested(nested), "picks": {n: picks.count(n) for n in sorted(set(picks))}},
            "candidates": table}


def selection_table(sel: dict[str, Any]) -> list[str]:
    """Markdown table of a :func:`select` result (validation figures decide; test figures for reference)."""
    srcs = [k for k in sel["candidates"][0]["test"] if k != "all"]
    head = ["candidate", "valid macro", "valid acc", "test acc", "test macro",
            *[f"{s} {m}" for s in srcs for m in ("acc", "macro")], "nested picks"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = [(c["name"] + (" **(chosen)**" if c["name"] == sel["chosen"] else ""), c["valid"], c["test"],
             str(sel["nested"]["picks"].get(c["name"], 0))) for c in sel["candidates"]]
    rows.append(("nested (per-fold pick)", None, sel["nested"]["test"], ""))
    for name, valid, test, picks in rows:
        v = [f"{valid['all']['macro_acc']:.3f}", f"{valid['all']['acc']:.3f}"] if valid else ["–", "–"]
        t = [f"{test[s][m]:.3f}" for s in ["all", *srcs] for m in ("acc", "macro_acc")]
        lines.append("| " + " | ".join([name, *v, *t, picks]) + " |")
    return lines
