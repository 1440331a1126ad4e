"""The synthetic-voice head on frames shared with the ASR vs an encoder pass of its own.

    .venv/bin/python bench/shared_encoder_head.py [--limit N]

``robocall analyze`` runs the head on the call path (``SynthVoiceScorer.score``): the call
through ``call_channel``, one Whisper encoder pass over 30 s windows of its speech (the pass the
ASR makes), each speech window's frames cut out of it. Before, the head encoded every speech
window of at most 8 s alone, after ``inference_channel`` on that window (its training windows
are encoded that way). This script scores every test-split clip and call of the corpus both ways
with the shipped head and prints the correlation of the pooled log-odds, the EER and AUC of
each, and the time each took. The shared path's time includes the encoder passes, which in
``robocall analyze`` the ASR pays for. Needs the generated corpus (``datasets/``) and the
shipped weights; about 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from models.loading import load_synth_head
from models.synth_head import cut, pool_log_odds, speech_windows, window_features
from models.training import metrics as M
from models.training.corpus import read_clip, read_manifests, resolve_path
from pipeline.errors import EmptyAudioError
from pipeline.telephone import inference_channel

CALL_KINDS = ("dialer_call", "two_party_robot", "human_call", "two_party_human")
COPY_KINDS = ("resynthesis", "vocoder_resynthesis")


def own_pass(x: np.ndarray, scorer: object) -> float | None:
    """Every window channelled and encoded alone, as the head's training windows are."""
    head, encoder = scorer.head, scorer.encoder  # type: ignore[attr-defined]
    values, durations = [], []
    for a, b in speech_windows(x, max_window_s=head.spec.max_window_s):
        try:
            y = inference_channel(cut(x, (a, b)))
        except EmptyAudioError:
            continue
        feats = window_features(y, spec=head.spec, encoder=encoder)
        row = np.concatenate([feats[block] for block in head.spec.blocks])[None, :]
        values.append(float(head.log_odds(row)[0]))
        durations.append(b - a)
    return pool_log_odds(values, durations, quantile=head.pool_quantile) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N test rows only (0 = all)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    scorer = load_synth_head()
    rows = [r for r in read_manifests() if r.split == "test" and r.language in ("en", "zh")]
    rows = rows[: args.limit or None]
    scored, t_own, t_shared = [], 0.0, 0.0
    for row in rows:
        x = read_clip(resolve_path(row))
        t = time.perf_counter()
        shared = scorer.score(x)
        t_shared += time.perf_counter() - t
        t = time.perf_counter()
        own = own_pass(x, scorer)
        t_own += time.perf_counter() - t
        if own is not None and shared is not None:
            scored.append((int(row.label == "robot"), row.kind, own, shared.log_odds))
    y = np.array([s[0] for s in scored])
    kinds = np.array([s[1] for s in scored])
    own_lo, shared_lo = np.array([s[2] for s in scored]), np.array([s[3] for s in scored])
    print(f"{len(scored)} of {len(rows)} test rows scored both ways")  # noqa: T201
    print(f"time: own passes {t_own:.0f} s, shared path {t_shared:.0f} s")  # noqa: T201
    print(f"correlation of pooled log-odds: {np.corrcoef(own_lo, shared_lo)[0, 1]:.3f}")  # noqa: T201
    calls = np.isin(kinds, CALL_KINDS)
    subsets = {
        "all test rows": np.ones(y.size, bool),
        "people vs TTS/VC clips": ~calls & ~np.isin(kinds, COPY_KINDS),
        "call mixtures": calls,
    }
    for name, m in subsets.items():
        if not M.has_both_classes(y[m]):
            continue
        own_eer, shared_eer = M.eer(y[m], own_lo[m])[0], M.eer(y[m], shared_lo[m])[0]
        print(  # noqa: T201
            f"{name:24s} n={m.sum():4d}  own EER {100 * own_eer:5.1f} % AUC "
            f"{M.roc_auc(y[m], own_lo[m]):.3f}   shared EER {100 * shared_eer:5.1f} % AUC "
            f"{M.roc_auc(y[m], shared_lo[m]):.3f}"
        )


if __name__ == "__main__":
    main()
