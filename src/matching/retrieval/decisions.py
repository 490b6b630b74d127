"""Which of a query's candidates are predicted matches: the decision rules, on arrays alone.

`threshold`: every candidate whose probability reaches the threshold. `best`: only the query's most
likely candidate, if it reaches the threshold (a catalog product usually has one match).

`mutual` (measured out of fold, never a decision of `matching-find`): the query's best candidate when
the query is also that candidate's best among the candidate's own candidates. Deciding by it needs
every candidate's own neighbourhood retrieved and scored, k times a query's work, so the stage reports
its out-of-fold figures beside the rules find can apply.
"""

from __future__ import annotations

import numpy as np

from matching.data.cleaning import unordered_key
from matching.matchers.names import DECISION_RULES as RULES

MUTUAL = "mutual"


def is_best(query_ids: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The one row of each query with the highest probability (the earlier row on a tie)."""
    order = np.lexsort((np.arange(len(query_ids)), -probability, query_ids))
    first = np.r_[True, query_ids[order][1:] != query_ids[order][:-1]]
    best = np.zeros(len(query_ids), dtype=bool)
    best[order[first]] = True
    return best


def is_mutual_best(query_ids: np.ndarray, candidate_ids: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The best row of each query whose reverse row (the candidate as query) is its query's best too;
    a candidate that is not itself a query is never mutual."""
    best = np.flatnonzero(is_best(query_ids, probability))
    keys = unordered_key(query_ids[best], candidate_ids[best])
    mutual = np.zeros(len(query_ids), dtype=bool)
    mutual[best[keys.duplicated(keep=False)]] = True  # (a, b) and (b, a) both best: the key twice
    return mutual


def eligible(rule: str, query_ids: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The rows a rule may keep, before the threshold."""
    if rule == "best":
        return is_best(query_ids, probability)
    if rule == "threshold":
        return np.ones(len(query_ids), dtype=bool)
    raise ValueError(f"unknown decision rule {rule!r}; use one of {', '.join(RULES)}")


def decided(rule: str, threshold: float, query_ids: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Whether each candidate row is a predicted match."""
    return eligible(rule, query_ids, probability) & (probability >= threshold)


def best_kept_f1(
    probability: np.ndarray, target: np.ndarray, positives: int, recalled: np.ndarray | None = None
) -> dict[str, float]:
    """The threshold whose kept rows (probability >= it) give the highest F1, recall counted over
    `positives` (so a match the rows lack is missed at every threshold), and its figures. `recalled`:
    the rows recall counts (default: the matches, `target`), when precision counts more matches than
    recall is asked about."""
    order = np.argsort(-probability, kind="stable")
    ordered, hits = probability[order], np.cumsum(target[order])
    found = hits if recalled is None else np.cumsum(recalled[order])
    last = np.r_[ordered[1:] != ordered[:-1], True]  # a threshold keeps every row down to its value's last
    if not last.any() or positives <= 0:
        return {"f1": 0.0, "threshold": 1.0, "precision": 0.0, "recall": 0.0}
    kept = np.arange(1, len(ordered) + 1)[last]
    precision, recall = hits[last] / kept, found[last] / positives
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    return {
        "f1": float(f1[best]),
        "threshold": float(ordered[last][best]),
        "precision": float(precision[best]),
        "recall": float(recall[best]),
    }


def rule_figures(
    rule: str,
    query_ids: np.ndarray,
    probability: np.ndarray,
    target: np.ndarray,
    positives: int,
    candidate_ids: np.ndarray | None = None,
) -> dict[str, float]:
    """The rule at its best threshold: F1 of the kept rows, every unlabelled row kept counted as wrong
    and recall over `positives` (the queries' known matches, retrieved or not). `mutual` needs
    `candidate_ids`."""
    if rule == MUTUAL:
        rows = is_mutual_best(query_ids, np.asarray(candidate_ids), probability)
    else:
        rows = eligible(rule, query_ids, probability)
    return best_kept_f1(probability[rows], target[rows].astype(np.float64), positives)
