"""How the synthetic-voice head's settings are chosen: grouped cross-validation for the unseen.

Why not the dev "select" half alone: it holds 28 people and 8 TTS/VC robots from two THU
Mandarin pages, so a dev win (OC-softmax 3.6 % against 10.7 % EER) did not hold on test and a
better candidate tied (``docs/voice_generalisation.md``). What the head is for is engines and
speakers it never saw, so the criterion measures that on every non-test row we have.

Criterion of one setting (lower is better), the mean of two parts:

1. **family folds**. The selection pool is the head's training rows plus the dev select half
   (never a test row, never the dev fusion half, on which the fusion is fitted). Each TTS/VC
   engine family with at least ``min_fold_robots`` rows in the pool is held out in turn, together
   with one of ``people_folds`` groups of the people (sha1 of the speaker; fold k holds out group
   k mod ``people_folds``). The setting is fitted on the rest of the pool less every row that
   shares a speaker or an utterance with a held-out row, and scored on the held-out rows'
   telephone windows. Part 1 is the mean EER over the folds. Copy-synthesis families are never
   held out (they are reported, not targeted) but are dropped with their speakers.
2. **the dev select half** as before (:func:`models.training.train_synth`): people against TTS/VC
   clips and the dev call mixtures on the call path, scored by the head fitted on the train rows.

Deterministic (sha1 buckets, convex fits from zeros). Test, the held-out commercial voices and the
nested leave-one-engine/source-out of ``robocall evaluate`` stay for reporting only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from models.training import metrics as M
from models.training.corpus import CorpusRow, hash_unit, row_links
from models.training.synth_data import ClipFeatures, TrainConfig
from models.training.synth_fit import is_copy, stack

SELECT_SALT = "synth-select-v1"  # people's groups of the family folds

Scorer = Callable[[np.ndarray], np.ndarray]  # windows (n, d) -> robot score (n,)
Fitter = Callable[[np.ndarray, np.ndarray, list[CorpusRow]], Scorer]  # x, y, the rows of x


@dataclass(frozen=True, slots=True)
class SelectionFold:
    """One fold: the held-out TTS/VC family and the pool indices to fit on and to score."""

    held_out: str
    train: tuple[int, ...]
    test: tuple[int, ...]


def selection_pool(
    rows: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    *,
    fit_ids: set[str],
    select_ids: set[str],
) -> list[CorpusRow]:
    """The rows the criterion may use: training rows and dev select rows with features."""
    return [r for r in rows if r.id in tel and (r.id in fit_ids or r.id in select_ids)]


def selection_folds(pool: Sequence[CorpusRow], cfg: TrainConfig) -> Iterator[SelectionFold]:
    """Leave-one-family-out folds with a group of people held out beside each family."""
    families = Counter(r.engine_family for r in pool if r.label == "robot" and not is_copy(r, cfg))
    held = sorted(f for f, n in families.items() if n >= cfg.min_fold_robots)
    links = [set(row_links(r)) for r in pool]
    group = [
        int(hash_unit(f"speaker:{r.speaker}", salt=SELECT_SALT) * cfg.people_folds) for r in pool
    ]
    for k, family in enumerate(held):
        test = [
            i
            for i, r in enumerate(pool)
            if (r.label == "robot" and r.engine_family == family and not is_copy(r, cfg))
            or (r.label == "human" and group[i] == k % cfg.people_folds)
        ]
        held_keys = set().union(*(links[i] for i in test))
        held_rows = set(test)
        train = [i for i in range(len(pool)) if i not in held_rows and not links[i] & held_keys]
        yield SelectionFold(family, tuple(train), tuple(test))


def fold_scores(
    pool: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    folds: Sequence[SelectionFold],
    fit: Fitter,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labels and scores of each fold's held-out rows under ``fit`` (folds lacking a class are
    skipped), so scores of several fits can be combined before the EER is read."""
    out = {}
    for fold in folds:
        x, y, fit_rows = stack(tel, [pool[i] for i in fold.train])
        xt, yt, _ = stack(tel, [pool[i] for i in fold.test])
        if M.has_both_classes(y) and M.has_both_classes(yt):
            out[fold.held_out] = (yt, fit(x, y, fit_rows)(xt))
    return out


def fold_eers(
    pool: Sequence[CorpusRow],
    tel: dict[str, ClipFeatures],
    folds: Sequence[SelectionFold],
    fit: Fitter,
) -> dict[str, float]:
    """EER of each fold's held-out rows under ``fit``."""
    scored = fold_scores(pool, tel, folds, fit)
    return {k: float(M.eer(y, s)[0]) for k, (y, s) in scored.items()}


def criterion(folds: dict[str, float], dev: float | None) -> float:
    """The number a setting is chosen by: mean of the family folds' mean EER and the dev EER
    (whichever of the two exists when the other does not)."""
    parts = [float(np.mean(list(folds.values())))] if folds else []
    parts += [dev] if dev is not None else []
    if not parts:
        raise ValueError("neither family folds nor a dev set to choose on")
    return float(np.mean(parts))
