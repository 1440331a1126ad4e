"""A candidate voice head against the shipped one, paired on the held-out sets (issue 12).

    OMP_NUM_THREADS=1 nice -n 10 python -m models.training.eval_voice_candidate \\
        --candidate runs/kokorotrain/synth_head.npz [--reference HEAD] [--out runs/kokorotrain/eval]

Only the voice head: no ASR, no fusion. Every clip goes through the one telephone-channel draw
of ``eval_sources`` (``channel_audio``, the draw ``eval_kokoro`` and ``eval_pypi_speech`` scored),
and both heads score the same audio as ``robocall analyze`` does (``SynthVoiceScorer``: the
head's own encoder pass, cached on disk by ``fusion_calls.with_cached_frames``, so the frames
are computed once for both). The sets, none of which any head trained or chose on:

- the held-out Kokoro clips (``datasets/prepare_kokoro.py``) against as many test people of the
  same language (``eval_kokoro.people_sample``), all texts and the neutral ones apart;
- the held-out commercial voices (Polly, Edge/Azure, iFlytek, ChatTTS: ``eval_pypi_speech``'s
  sample) against every test person of our sources and against the PyPI people.

Per set and language: AUC, EER and the shares called synthetic at 0.5 (robots; people) of each
head, and the candidate's change, paired: one cluster bootstrap per round
(``aasist_scores.cluster_draw``: voices for robots, speakers for our people, packages for the
PyPI people as ``eval_pypi_speech`` draws them, each class drawn on its own) applied to both
heads, 95 % percentile intervals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training import metrics as M
from models.training.aasist_scores import paired_change
from models.training.corpus import KOKORO_MANIFEST, REPO_DIR, CorpusRow, read_manifest
from models.training.eval_sources import LANGUAGES, SALT, channel_audio

log = logging.getLogger(__name__)
OUT = REPO_DIR / "runs" / "kokorotrain" / "eval"
HEADS = ("shipped", "candidate")
KOKORO = "Kokoro (held out)"
KOKORO_NEUTRAL = "Kokoro neutral lines (held out)"
KOKORO_PEOPLE = "test people (Kokoro's sample)"


def sets(corpus: Sequence[CorpusRow]) -> dict[str, list[CorpusRow]]:
    """``{group: rows}``: the Kokoro clips and their people sample, and ``eval_pypi_speech``'s
    groups (the PyPI people, our test people, the commercial voices)."""
    from models.training.eval_kokoro import people_sample
    from models.training.eval_pypi_speech import samples

    kokoro = read_manifest(KOKORO_MANIFEST)
    people = [
        r
        for language in LANGUAGES
        for r in people_sample(corpus, language, sum(k.language == language for k in kokoro))
    ]
    return {KOKORO: kokoro, KOKORO_PEOPLE: people, **samples()}


class LastEmbedding:
    """A clip embedder that keeps its last answer, so two heads scoring the same channel copy
    in turn run AASIST once."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._last: tuple[bytes, Any] | None = None

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    def embed(self, samples: np.ndarray) -> Any:
        key = hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).digest()
        if self._last is None or self._last[0] != key:
            self._last = (key, self.inner.embed(samples))
        return self._last[1]


def cluster(row: CorpusRow, group: str) -> str:
    """The bootstrap unit: a robot's voice (a Kokoro voice, a commercial vendor's voice or
    ChatTTS seed), a PyPI person's package, one of our speakers."""
    from models.training.eval_pypi_speech import PYPI

    return row.source if row.label == "human" and group == PYPI else row.speaker


def score(
    scorers: dict[str, Any], groups: dict[str, list[CorpusRow]], *, progress: bool = False
) -> list[dict[str, Any]]:
    """One record per clip (a clip in two groups is scored once): its groups, language, class,
    bootstrap unit, kind (Kokoro: neutral or sales) and each head's pooled log-odds (None when
    no speech window was found)."""
    by_id: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for group, rows in groups.items():
        for row in rows:
            if row.id in by_id:
                by_id[row.id]["groups"].append(group)
                continue
            caller = channel_audio(row, salt=SALT).caller()
            rec: dict[str, Any] = {
                "id": row.id,
                "groups": [group],
                "language": row.language,
                "y": int(row.label == "robot"),
                "cluster": cluster(row, group),
                "kind": dict(row.extra).get("kind", ""),
            }
            for name, scorer in scorers.items():
                got = scorer.score(caller)
                rec[name] = None if got is None else float(got.log_odds)
            by_id[row.id] = rec
            if progress and len(by_id) % 25 == 0:
                log.warning("%d clips, %.0f s", len(by_id), time.monotonic() - started)
    return list(by_id.values())


def comparisons(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (robots, people) pairing per language: sizes and :func:`paired_change`."""
    from models.training.eval_pypi_speech import COMMERCIAL, OWN, PYPI

    pairings = (
        (KOKORO, KOKORO_PEOPLE, lambda r: True),
        (KOKORO_NEUTRAL, KOKORO_PEOPLE, lambda r: r["y"] == 0 or r["kind"] == "neutral"),
        (COMMERCIAL, OWN, lambda r: True),
        (COMMERCIAL, PYPI, lambda r: True),
    )
    out = []
    for robots, people, keep in pairings:
        source = KOKORO if robots == KOKORO_NEUTRAL else robots
        for language in LANGUAGES:
            members = [
                r
                for r in records
                if r["language"] == language
                and (
                    (r["y"] == 1 and source in r["groups"])
                    or (r["y"] == 0 and people in r["groups"])
                )
                and all(r[h] is not None for h in HEADS)
                and keep(r)
            ]
            y = np.asarray([r["y"] for r in members], dtype=np.int64)
            if not M.has_both_classes(y):
                continue
            out.append(
                {
                    "robots": robots,
                    "people": people,
                    "language": language,
                    "n_robots": int(y.sum()),
                    "n_people": int((1 - y).sum()),
                    "robot_clusters": len({r["cluster"] for r in members if r["y"]}),
                    "people_clusters": len({r["cluster"] for r in members if not r["y"]}),
                    **paired_change(
                        y,
                        np.asarray([r["shipped"] for r in members], dtype=float),
                        np.asarray([r["candidate"] for r in members], dtype=float),
                        [r["cluster"] for r in members],
                    ),
                }
            )
    return out


def _cell(fig: dict[str, float], *, pct: bool) -> str:
    scale, unit = (100.0, " %") if pct else (1.0, "")
    digits = 1 if pct else 3
    return (
        f"{scale * fig['shipped']:.{digits}f}{unit} -> {scale * fig['candidate']:.{digits}f}{unit} "
        f"({scale * fig['change']:+.{digits}f} [{scale * fig['low']:+.{digits}f}, "
        f"{scale * fig['high']:+.{digits}f}])"
    )


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison table: shipped -> candidate (change [95 % paired CI]) per figure."""
    from models.training.tables import markdown_table

    header = [
        "robots vs people",
        "lang",
        "robots / people (clusters)",
        "AUC",
        "EER",
        "robots called synthetic at 0.5",
        "people called synthetic at 0.5",
    ]
    body = [
        [
            f"{r['robots']} vs {r['people']}",
            r["language"],
            f"{r['n_robots']} ({r['robot_clusters']}) / {r['n_people']} ({r['people_clusters']})",
            _cell(r["auc"], pct=False),
            _cell(r["eer"], pct=True),
            _cell(r["robots_called"], pct=True),
            _cell(r["people_called"], pct=True),
        ]
        for r in rows
    ]
    return "\n".join(markdown_table(header, body))


def run(candidate: Path, *, reference: Path | None = None, progress: bool) -> dict[str, Any]:
    """Both heads over every set (Whisper and torch on one thread); plain data. ``reference``
    (default: the shipped head) takes the "shipped" side, e.g. the same recipe without the
    candidate's extra data."""
    import dataclasses

    import torch

    from models.loading import (
        SYNTH_ENCODER_ASR,
        load_clip_embedder,
        load_synth_encoder,
        load_synth_head_from,
    )
    from models.training.corpus import read_manifests
    from models.training.eval_sources import shipped_head_path
    from models.training.fusion_calls import with_cached_frames

    torch.set_num_threads(1)
    encoder = load_synth_encoder(dataclasses.replace(SYNTH_ENCODER_ASR, cpu_threads=1))
    embedder = LastEmbedding(load_clip_embedder())
    paths = {"shipped": reference or shipped_head_path(), "candidate": candidate}
    scorers = {
        name: with_cached_frames(load_synth_head_from(path, encoder=encoder, embedder=embedder))
        for name, path in paths.items()
    }
    started = time.monotonic()
    groups = sets(read_manifests())
    records = score(scorers, groups, progress=progress)
    scored_s = time.monotonic() - started
    return {
        "heads": {n: s.model_info.sha256 for n, s in scorers.items()},
        "sizes": {g: len(rows) for g, rows in groups.items()},
        "comparisons": comparisons(records),
        "records": records,
        "seconds": round(scored_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", type=Path, required=True, help="candidate synth_head.npz")
    parser.add_argument(
        "--reference", type=Path, help="head to compare against (default: the shipped one)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder for results.json")
    parser.add_argument(
        "--render", action="store_true", help="only print the table of an earlier results.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    path = args.out / "results.json"
    if args.render:
        out = json.loads(path.read_text(encoding="utf-8"))
    else:
        out = run(args.candidate, reference=args.reference, progress=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    sys.stdout.write(markdown(out["comparisons"]) + "\n")
    sys.stdout.write(f"heads {out['heads']}; clips {out['sizes']}; scoring {out['seconds']} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
