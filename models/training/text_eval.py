"""Out-of-fold scores of the text heads and their held-out metrics (``train_text compare``)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from models.training import metrics as M
from models.training.text_features import (
    MAX_BUSINESS_FPR,
    MAX_FPR,
    TOPICS,
    Features,
    TextRow,
    fit_binary,
    logistic_regression,
    row_transcript,
    sample_weights,
)

# --- cross-validation -----------------------------------------------------------------------


@dataclass
class OofScores:
    """Out-of-fold decision values for every row (topic: predicted label per pitch row)."""

    pitch: np.ndarray
    robot: np.ndarray
    topic: list[str]


def rule_scores(rows: Sequence[TextRow]) -> OofScores:
    """rules-v1 as a baseline: sales logit, summed robot evidence weight, rule topic."""
    from pipeline.text_cues import RuleTextClassifier

    clf = RuleTextClassifier()
    pitch, robot, topic = [], [], []
    for r in rows:
        s = clf.score(row_transcript(r))
        p = min(max(s.sales_probability, 1e-6), 1 - 1e-6)
        pitch.append(math.log(p / (1 - p)))
        robot.append(sum(e.weight for e in s.evidence) + 1e-3 * pitch[-1])  # tie-break
        topic.append(s.topic if s.topic != "none" else "other")
    return OofScores(np.array(pitch), np.array(robot), topic)


def rule_robot_weights(rows: Sequence[TextRow]) -> np.ndarray:
    """Sum of the rules-v1 evidence weights of each row (robot-logit units), shape (n,)."""
    from pipeline.text_cues import RuleTextClassifier

    clf = RuleTextClassifier()
    return np.array([sum(e.weight for e in clf.score(row_transcript(r)).evidence) for r in rows])


HeadSpec = str | dict[str, str]  # one feature set for every head, or one per head


def head_spec(name: HeadSpec) -> dict[str, str]:
    """Feature set per head: one name for all three heads, or a mapping."""
    return {h: name for h in ("pitch", "robot", "topic")} if isinstance(name, str) else name


def cross_validate(
    rows: Sequence[TextRow],
    feats: Features,
    name: HeadSpec,
    folds: np.ndarray,
    *,
    trainable: np.ndarray | None = None,
) -> OofScores:
    """Out-of-fold scores; each head uses its feature set (a fresh vocabulary per fold).

    ``trainable``: boolean mask of rows that may be trained on (default all); every row is
    still scored by the fold that holds it out.
    """
    if name == "rules":
        return rule_scores(rows)
    spec = head_spec(name)
    labels = {
        "pitch": np.array([r.is_pitch for r in rows]),
        "robot": np.array([r.is_robot for r in rows]),
    }
    topics = np.array([r.topic for r in rows])
    topical = (labels["pitch"] == 1) & np.isin(topics, TOPICS)  # charity persuasion has none
    weights = sample_weights(rows)
    out = {"pitch": np.zeros(len(rows)), "robot": np.zeros(len(rows))}
    topic = ["none"] * len(rows)
    for k in sorted(set(folds.tolist())):
        test = np.where(folds == k)[0]
        train = np.where((folds != k) & (True if trainable is None else trainable))[0]
        built = {s: feats.build(s, train, test) for s in sorted(set(spec.values()))}
        for head in ("pitch", "robot"):
            x_train, x_test = built[spec[head]]
            y = labels[head]
            out[head][test] = fit_binary(x_train, y[train], weights[train]).decision_function(
                x_test
            )
        x_train, x_test = built[spec["topic"]]
        on = topical[train]
        clf = logistic_regression().fit(
            x_train[on], topics[train][on], sample_weight=weights[train][on]
        )
        for i, label in zip(test, clf.predict(x_test), strict=True):
            topic[i] = str(label)
    return OofScores(out["pitch"], out["robot"], topic)


# --- metrics --------------------------------------------------------------------------------


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    labels = np.r_[np.ones(len(pos), dtype=np.int64), np.zeros(len(neg), dtype=np.int64)]
    return M.roc_auc(labels, np.concatenate([pos, neg]))


def threshold_at_fpr(neg: np.ndarray, max_fpr: float = MAX_FPR) -> float:
    """Lowest threshold t with mean(neg >= t) <= max_fpr (scores >= t are positive)."""
    ranked = np.sort(neg)[::-1]
    allowed = int(math.floor(max_fpr * len(ranked)))  # negatives allowed above threshold
    if allowed >= len(ranked):
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.inf))


def binary_report(
    scores: np.ndarray,
    rows: Sequence[TextRow],
    *,
    pos: np.ndarray,
    neg: np.ndarray,
    choose_neg: np.ndarray,
) -> dict[str, Any]:
    """AUC, recall at FPR <= 2 %, and at the 0 threshold, on ``pos`` against ``neg``.

    The 2 % threshold comes from ``choose_neg``, negatives of the *selection* half, never
    from the ``neg`` it is reported on (issue 11: a threshold set on the negatives it is read
    on always shows 2 %).
    """
    p, n = scores[pos], scores[neg]
    t = threshold_at_fpr(scores[choose_neg])
    groups = np.array([rows[i].group for i in np.where(pos)[0]])
    per_group = [float(np.mean(p[groups == g] >= t)) for g in sorted(set(groups.tolist()))]
    return {
        "n_pos": int(pos.sum()),
        "n_neg": int(neg.sum()),
        "n_neg_threshold": int(choose_neg.sum()),
        "auc": roc_auc(p, n),
        "recall_at_fpr2": float(np.mean(p >= t)) if len(p) else float("nan"),
        "group_recall_at_fpr2": float(np.mean(per_group)) if per_group else float("nan"),
        "fpr_at_fpr2": float(np.mean(n >= t)) if len(n) else float("nan"),
        "recall_at_0": float(np.mean(p >= 0)) if len(p) else float("nan"),
        "fpr_at_0": float(np.mean(n >= 0)) if len(n) else float("nan"),
        "threshold_fpr2": t,
    }


def is_selection_group(group: str) -> bool:
    """Half of the fold groups, by sha1: feature sets and thresholds are chosen on these rows
    (``compare``, the 2 % threshold) and the figures of ``train`` are reported on the others."""
    return int(hashlib.sha1(f"text-select-v1:{group}".encode()).hexdigest(), 16) % 2 == 0


def _mask(rows: Sequence[TextRow], keep: Callable[[TextRow], bool]) -> np.ndarray:
    return np.array([keep(r) for r in rows], dtype=bool)


def _held_out_half(r: TextRow) -> bool:
    """Robocall split groups the rules' lexicon was *not* written from (bench report)."""
    group = r.group.removeprefix("robocall/")
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 2 == 1


def evaluate(
    rows: Sequence[TextRow], oof: OofScores, *, half: Literal["select", "report"] = "report"
) -> dict[str, Any]:
    """Every number of the report for one set of out-of-fold scores, on one half of the groups.

    ``half="select"``: the selection half, where ``compare`` picks feature sets;
    ``"report"``: the other half, the figures the docs and the model card quote. Either way
    the 2 % thresholds are set on the selection half's negatives.
    """
    select = _mask(rows, lambda r: is_selection_group(r.group))
    shown = select if half == "select" else ~select
    rc = _mask(rows, lambda r: r.source == "robocall")
    out: dict[str, Any] = {"half": half, "pitch": {}, "robot": {}, "topic": {}, "by_source": {}}
    non_pitch = _mask(rows, lambda r: r.is_pitch == 0)
    human = _mask(rows, lambda r: r.is_robot == 0)
    slices = {
        "all": (rc, non_pitch, human),
        "held_out_half": (
            rc & _mask(rows, _held_out_half),
            non_pitch,
            human,
        ),
    }
    for lang in ("en", "zh"):
        is_lang = np.array([r.language == lang for r in rows], dtype=bool)
        slices[lang] = (rc & is_lang, non_pitch & is_lang, human & is_lang)
    for name, (pos, neg_pitch, neg_robot) in slices.items():
        out["pitch"][name] = binary_report(
            oof.pitch, rows, pos=pos & shown, neg=neg_pitch & shown, choose_neg=neg_pitch & select
        )
        out["robot"][name] = binary_report(
            oof.robot, rows, pos=pos & shown, neg=neg_robot & shown, choose_neg=neg_robot & select
        )
    t_pitch = out["pitch"]["all"]["threshold_fpr2"]
    t_robot = out["robot"]["all"]["threshold_fpr2"]
    for source in sorted({r.source for r in rows}):
        m = np.array([r.source == source for r in rows], dtype=bool) & shown
        if not m.any():
            continue
        out["by_source"][source] = {
            "n": int(m.sum()),
            "pitch_rate_at_fpr2": float(np.mean(oof.pitch[m] >= t_pitch)),
            "robot_rate_at_fpr2": float(np.mean(oof.robot[m] >= t_robot)),
            "pitch_rate_at_0": float(np.mean(oof.pitch[m] >= 0)),
            "robot_rate_at_0": float(np.mean(oof.robot[m] >= 0)),
        }
    families: dict[str, Callable[[TextRow], bool]] = {
        "robocall": lambda r: r.source == "robocall",
        "scripts": lambda r: r.source.startswith(("script", "asr_")),
        "human_sales": lambda r: r.source.startswith("authored_sales"),
        "all": lambda r: True,
    }
    for fam, keep in families.items():
        idx = [
            i
            for i, r in enumerate(rows)
            if shown[i] and r.is_pitch and r.topic in TOPICS and keep(r)
        ]
        truth = [rows[i].topic for i in idx]
        pred = [oof.topic[i] for i in idx]
        out["topic"][fam] = {
            "n": len(idx),
            "accuracy": float(np.mean([a == b for a, b in zip(truth, pred, strict=True)])),
            "macro_f1": _macro_f1(truth, pred),
        }
    return out


# --- robot-leaning evidence on human business speech (issue 13) -------------------------------

# (source prefixes, is_robot) per family. The robot head's false positives that matter are on
# people who sell or do business on the phone; typed persuasion and the lines written here are
# kept apart from each other and from chit-chat and read text, so no family hides another.
EVIDENCE_FAMILIES: dict[str, tuple[tuple[str, ...], int]] = {
    "human business/sales, authored": (("authored_sales_", "authored_business_"), 0),
    "human persuasion, typed (PersuasionForGood)": (("persuasion_",), 0),
    "human chit-chat and read text": (
        ("chatterbot_", "authored_everyday_", "aishell", "zh_human_text", "asr_"),
        0,
    ),
    "robocall transcripts (held-out campaigns)": (("robocall",), 1),
    "robot script lines and their Whisper transcripts": (("script_", "asr_"), 1),
}


def business_margin(log_odds: np.ndarray, rows: Sequence[TextRow], on: np.ndarray) -> float:
    """Smallest margin >= 0 such that ``log_odds > margin`` on at most ``MAX_BUSINESS_FPR`` of
    the spoken human business/sales texts among ``on`` (robot-logit units).

    The balanced Platt fit puts 0 where robots and *all* people meet, and most people in the
    corpus chat or read; a person selling is harder, so the shipped threshold is raised for them
    (issue 13). Chosen on the selection half, reported on the other.
    """
    prefixes = EVIDENCE_FAMILIES["human business/sales, authored"][0]
    neg = log_odds[on & _mask(rows, lambda r: r.source.startswith(prefixes) and not r.is_robot)]
    if not neg.size:
        return 0.0
    return max(0.0, threshold_at_fpr(neg, MAX_BUSINESS_FPR))


def evidence_rates(
    rows: Sequence[TextRow], weights: np.ndarray, shown: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Share of rows with robot-leaning evidence (``weights > 0``) per family and language.

    ``weights``: the evidence weight each row would get (the robot head's calibrated log-odds,
    or the sum of all text evidence); ``shown``: the rows reported on. For human families the
    share is the false-positive rate, for robot families the recall. 95 % CIs by fold group.
    """
    out: dict[str, dict[str, Any]] = {}
    language = np.array([r.language for r in rows])
    for family, (prefixes, robot) in EVIDENCE_FAMILIES.items():
        in_family = np.array([r.source.startswith(prefixes) and r.is_robot == robot for r in rows])
        for lang in ("all", "en", "zh"):
            m = shown & in_family & ((language == lang) | (lang == "all"))
            if not m.any():
                continue
            groups = [rows[i].group for i in np.where(m)[0]]
            flags = weights[m] > 0
            out[f"{family} ({lang})"] = {
                "n": int(m.sum()),
                "groups": len(set(groups)),
                "rate": float(flags.mean()),
                "ci95": M.rate_ci(flags, groups),
                "median_weight": float(np.median(weights[m])),
                "share_above_3": float(np.mean(weights[m] > 3.0)),
            }
    return out


def _macro_f1(truth: Sequence[str], pred: Sequence[str]) -> float:
    scores = []
    for label in sorted(set(truth)):
        tp = sum(t == label and p == label for t, p in zip(truth, pred, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, pred, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else float("nan")
