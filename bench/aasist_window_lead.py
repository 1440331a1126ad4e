"""The voice head's AASIST window against quiet before the speech (issue 12 / 13).

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/aasist_window_lead.py [--people 40] [--robots 30]

The shipped head embeds the middle 4.04 s of the whole channel copy
(``models.aasist_runtime.AasistEmbedder``); a few seconds of quiet (or ringing) before a short
clip move that window off the speech. Here the same test clips (``bench/signalling_tones.py``'s
choice: the test split of the shared data and the English TTS, at most 3 per source and
language) are scored by the shipped scorer with 0, 2 and 5 s of line noise (-60 dBFS) in front,
once with the shipped embedder and once with one that first crops the channel copy to its speech
(first to last speech window of ``models.synth_head.speech_windows``). Nothing is refitted: the
shipped head, Platt scaling and pooling serve both, so the AUCs compare rankings and the drift
(mean |log-odds - the clip's own log-odds at lead 0|) compares stability.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signalling_tones import test_rows  # noqa: E402 (bench/ is scripts, not a package)

from models.synth_head import ClipEmbedder, SynthVoiceScorer, speech_windows  # noqa: E402
from models.training.corpus import read_clip, resolve_path  # noqa: E402
from models.training.metrics import roc_auc  # noqa: E402

SR = 16_000
LEADS_S = (0.0, 2.0, 5.0)
NOISE_DBFS = -60.0


@dataclass(frozen=True)
class SpeechMiddle:
    """An embedder that crops a channel copy to its speech before the wrapped one's window."""

    inner: ClipEmbedder  # the shipped one (models.aasist_runtime.AasistEmbedder)
    max_window_s: float

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def embed(self, y: np.ndarray) -> np.ndarray:
        windows = speech_windows(y, max_window_s=self.max_window_s)
        if windows:
            y = y[int(windows[0][0] * SR) : int(windows[-1][1] * SR)]
        return np.asarray(self.inner.embed(y))


def quiet_in_front(y: np.ndarray, lead_s: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, 10 ** (NOISE_DBFS / 20), int(lead_s * SR)).astype(np.float32)
    return np.concatenate([noise, y])


def table(scores: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per language and lead, AUC of each window and each one's mean drift."""
    base = {s["id"]: s for s in scores if s["lead"] == 0.0}
    lines = [
        "| language | lead s | AUC, whole-channel middle (shipped) | speech middle | "
        "mean drift, shipped | speech middle |",
        "|---|---|---|---|---|---|",
    ]
    for lang in ("en", "zh"):
        for lead in LEADS_S:
            rows = [
                s
                for s in scores
                if s["lang"] == lang
                and s["lead"] == lead
                and None not in (s["shipped"], s["speech"], base[s["id"]]["shipped"])
            ]
            robot = np.array([s["label"] == "robot" for s in rows])
            if robot.all() or not robot.any():
                continue  # a language without both classes here
            aucs = [roc_auc(robot, np.array([s[k] for s in rows])) for k in ("shipped", "speech")]
            drift = [
                np.mean([abs(s[k] - base[s["id"]][k]) for s in rows]) for k in ("shipped", "speech")
            ]
            lines.append(
                f"| {lang} ({int(robot.sum())} robots, {int((~robot).sum())} people) | {lead:g} | "
                f"{aucs[0]:.3f} | {aucs[1]:.3f} | {drift[0]:.2f} | {drift[1]:.2f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=40)
    parser.add_argument("--robots", type=int, default=30)
    args = parser.parse_args(argv)
    from pipeline.config import load_config
    from service.detector import load_detector

    scorer = load_detector(load_config()).synth_scorer
    if not isinstance(scorer, SynthVoiceScorer) or scorer.embedder is None:
        raise SystemExit("the shipped detector has no voice head with an AASIST block")
    shipped = scorer.embedder
    speech = SpeechMiddle(shipped, scorer.head.spec.max_window_s)
    rng = np.random.default_rng(5)
    scores = []
    for row in test_rows("human", args.people) + test_rows("robot", args.robots):
        y = read_clip(resolve_path(row))
        for lead in LEADS_S:
            z = quiet_in_front(y, lead, rng)
            record: dict[str, Any] = {"id": row.id, "label": row.label, "lang": row.language}
            record["lead"] = lead
            for name, embedder in (("shipped", shipped), ("speech", speech)):
                scorer.embedder = embedder
                score = scorer.score(z)
                record[name] = None if score is None else score.log_odds
            scorer.embedder = shipped
            scores.append(record)
        print(".", end="", file=sys.stderr, flush=True)
    print("\n".join(table(scores)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
