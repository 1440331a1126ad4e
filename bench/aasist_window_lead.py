"""The voice head's AASIST window against quiet before the speech (issue 12 / 13).

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/aasist_window_lead.py --after OTHER.npz \
        [--before models/weights/synth_head.npz] [--people 40] [--robots 30]

The shipped head embeds the middle 4.04 s of the whole channel copy (``FeatureSpec.aasist_pad_s``
None); a few seconds of quiet (or ringing) before a short clip move that window off the speech.
A head trained with a margin cuts it from the speech span with at most that much of the copy
around it (``models.synth_head.aasist_input``). Here the same test clips
(``bench/signalling_tones.py``'s choice: the test split of the shared data and the English TTS,
at most 3 per source and language) are scored by both heads, each with its own window, with 0,
2 and 5 s of line noise (-60 dBFS) in front. Per language and lead: each head's AUC, and its
drift (mean |log-odds - the clip's own log-odds at lead 0|), which compares stability.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signalling_tones import test_rows  # noqa: E402 (bench/ is scripts, not a package)

from models.training.corpus import read_clip, resolve_path  # noqa: E402
from models.training.metrics import roc_auc  # noqa: E402

HEADS = ("before", "after")
SR = 16_000
LEADS_S = (0.0, 2.0, 5.0)
NOISE_DBFS = -60.0


def quiet_in_front(y: np.ndarray, lead_s: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, 10 ** (NOISE_DBFS / 20), int(lead_s * SR)).astype(np.float32)
    return np.concatenate([noise, y])


def table(scores: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per language and lead, each head's AUC and mean drift."""
    base = {s["id"]: s for s in scores if s["lead"] == 0.0}
    lines = [
        "| language | lead s | AUC, before | after | mean drift, before | after |",
        "|---|---|---|---|---|---|",
    ]
    for lang in ("en", "zh"):
        for lead in LEADS_S:
            rows = [
                s
                for s in scores
                if s["lang"] == lang
                and s["lead"] == lead
                and None not in (*(s[k] for k in HEADS), *(base[s["id"]][k] for k in HEADS))
            ]
            robot = np.array([s["label"] == "robot" for s in rows])
            if robot.all() or not robot.any():
                continue  # a language without both classes here
            aucs = [roc_auc(robot, np.array([s[k] for s in rows])) for k in HEADS]
            drift = [np.mean([abs(s[k] - base[s["id"]][k]) for s in rows]) for k in HEADS]
            lines.append(
                f"| {lang} ({int(robot.sum())} robots, {int((~robot).sum())} people) | {lead:g} | "
                f"{aucs[0]:.3f} | {aucs[1]:.3f} | {drift[0]:.2f} | {drift[1]:.2f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=Path("models/weights/synth_head.npz"))
    parser.add_argument("--after", type=Path, required=True, help="head file to compare")
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--robots", type=int, default=30)
    args = parser.parse_args(argv)
    from models.loading import load_synth_head_from
    from models.synth_head import SynthVoiceScorer

    before = load_synth_head_from(args.before)
    if not isinstance(before, SynthVoiceScorer):
        raise SystemExit(f"{args.before} is not a synthetic-voice head")
    after = load_synth_head_from(args.after, encoder=before.encoder, embedder=before.embedder)
    scorers = dict(zip(HEADS, (before, after), strict=True))
    for name, scorer in scorers.items():
        pad = scorer.head.spec.aasist_pad_s
        cut = "the whole channel copy" if pad is None else f"the speech span + {pad:g} s"
        print(f"{name}: {scorer.model_info.sha256[:16]}, AASIST window from {cut}", file=sys.stderr)
    rng = np.random.default_rng(5)
    scores = []
    for row in test_rows("human", args.people) + test_rows("robot", args.robots):
        y = read_clip(resolve_path(row))
        for lead in LEADS_S:
            z = quiet_in_front(y, lead, rng)
            record: dict[str, Any] = {"id": row.id, "label": row.label, "lang": row.language}
            record["lead"] = lead
            for name, scorer in scorers.items():
                score = scorer.score(z)
                record[name] = None if score is None else score.log_odds
            scores.append(record)
        print(".", end="", file=sys.stderr, flush=True)
    print("\n".join(table(scores)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
