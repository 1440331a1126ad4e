"""Measure the rule-based text branch (``pipeline/text_cues.py``) on the shared text data.

Usage: ``.venv/bin/python bench/text_rules_report.py [--data /work/shared/data]``

Prints, per corpus: the fraction flagged as a sales pitch (``sales_probability >= 0.5``), the
topic distribution, the fraction with scripted/IVR evidence, and for the sales scripts the topic
agreement with the expected mapping. Robocall transcripts are reported for the "dev" half of the
split groups (``sha1(split_group) % 2 == 0``, which was read while writing the lexicon) and the
"held-out" half apart, per row and with one row per split group.
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
from collections.abc import Iterable
from pathlib import Path

from models.training.corpus import SCRIPT_TOPIC
from pipeline.text_cues import RuleTextClassifier
from pipeline.types import Segment, TextScore, Transcript

CLF = RuleTextClassifier()


def score_text(text: str, language: str) -> TextScore:
    seg = Segment(0.0, 10.0, text.strip(), -0.3, 0.01, 1.5)
    return CLF.score(Transcript(language or "en", 1.0, (seg,)))


def has(score: TextScore, name: str, *, min_weight: float = 1e-9) -> bool:
    return any(e.name == name and e.weight >= min_weight for e in score.evidence)


def summarise(title: str, scores: list[TextScore]) -> None:
    n = len(scores)
    if not n:
        print(f"{title}: no rows")
        return
    sales = sum(s.sales_probability >= 0.5 for s in scores)
    scripted = sum(has(s, "scripted_phrase") for s in scores)
    strong = sum(has(s, "scripted_phrase", min_weight=2.0) for s in scores)
    fluent = sum(has(s, "disfluency_rate") for s in scores)
    disfluent = sum(
        any(e.name == "disfluency_rate" and e.weight < 0 for e in s.evidence) for s in scores
    )
    topics = collections.Counter(s.topic for s in scores)
    print(f"{title}: n={n}")
    mean_p = sum(s.sales_probability for s in scores) / n
    print(f"  sales pitch (p>=0.5): {sales / n:6.1%}   mean p={mean_p:.3f}")
    print(f"  scripted/IVR evidence: {scripted / n:6.1%} (strong IVR: {strong / n:.1%})")
    print(f"  disfluency: long-fluent +w {fluent / n:.1%}, disfluent -w {disfluent / n:.1%}")
    print("  topics: " + ", ".join(f"{t} {c / n:.1%}" for t, c in topics.most_common()))


def agreement(title: str, rows: Iterable[tuple[str, TextScore]]) -> None:
    by_cat: dict[str, list[str]] = collections.defaultdict(list)
    for cat, score in rows:
        by_cat[cat].append(score.topic)
    print(f"{title}: topic per script category (expected -> share correct; distribution)")
    for cat, topics in sorted(by_cat.items()):
        # a "press 1" line can be about anything: no expected topic
        expected = None if cat == "press_1" else SCRIPT_TOPIC.get(cat)
        correct = sum(t == expected for t in topics) / len(topics) if expected else float("nan")
        dist = ", ".join(f"{t} {c}" for t, c in collections.Counter(topics).most_common())
        print(f"  {cat:17s} -> {expected or '(any)':12s} {correct:6.1%}  [{dist}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    data: Path = args.data
    print(f"model {CLF.model_info.model_id} sha256 {CLF.model_info.sha256[:16]}")

    rows = list(csv.DictReader((data / "text/robocall_transcripts.csv").open(encoding="utf-8")))
    halves: dict[str, list[tuple[dict[str, str], TextScore]]] = {"dev": [], "held-out": []}
    for row in rows:
        half = int(hashlib.sha1(row["split_group"].encode()).hexdigest(), 16) % 2
        halves["dev" if half == 0 else "held-out"].append(
            (row, score_text(row["transcript"], row["language"]))
        )
    for name, scored in halves.items():
        summarise(f"\nrobocall transcripts, {name} half, per row", [s for _, s in scored])
        first: dict[str, TextScore] = {}
        for row, s in scored:
            first.setdefault(row["split_group"], s)
        summarise(
            f"robocall transcripts, {name} half, one row per split group", list(first.values())
        )
    all_scores = [s for scored in halves.values() for _, s in scored]
    summarise("\nrobocall transcripts, all rows", all_scores)
    zh = [s for scored in halves.values() for r, s in scored if r["language"] != "en"]
    summarise("robocall transcripts, non-English rows (parcel scams, mixed zh/en)", zh)

    for lang in ("zh", "en"):
        path = data / f"scripts/sales_lines_{lang}.txt"
        lines = [ln.split("\t", 1) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
        scored_lines = [(cat, score_text(text, lang)) for cat, text in lines]
        summarise(f"\nsales scripts ({lang})", [s for _, s in scored_lines])
        agreement(f"sales scripts ({lang})", scored_lines)

    manifest = list(csv.DictReader((data / "manifest.csv").open(encoding="utf-8")))
    aishell = [
        score_text(r["text"], "zh") for r in manifest if r["source"] == "aishell" and r["text"]
    ]
    summarise("\nAISHELL read speech (human, not sales): false sales-pitch rate", aishell)
    other_zh = [
        score_text(r["text"], "zh")
        for r in manifest
        if r["source"].startswith("zh_") and r["label"] == "human" and r["text"]
    ]
    summarise("other human Mandarin lines with text (zh_* sources)", other_zh)


if __name__ == "__main__":
    main()
