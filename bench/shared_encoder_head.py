"""Would the synthetic-voice head work on encoder frames shared with the ASR?

    .venv/bin/python bench/shared_encoder_head.py [--limit N]

Today the head (``models/synth_head.py``) runs the Whisper encoder once per speech window of
at most 8 s, on that window alone after ``inference_channel``; the ASR runs the same encoder on
30 s windows of the recording. Sharing one pass means the head would read its frames out of a
30 s window with other speech around them. This script scores every test-split clip and call of
the corpus both ways with the *shipped* head (no retraining) and prints the correlation of the
pooled log-odds, EER and AUC of each, and the time each took:

- own: ``SynthVoiceScorer.score`` (what ``robocall analyze`` runs);
- shared: ``inference_channel`` over the whole recording (times kept), the log-mel of all of it,
  the encoder on consecutive 30 s windows padded like the ASR's, each speech window's frames
  (20 ms each) cut out of those, then the same mean + std, LFCC, head and pooling.

The shared timing here includes the encoder passes, which the ASR would already have paid for.
Needs the generated corpus (``datasets/``) and the shipped weights; about 8 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from models import metrics as M
from models.corpus import read_clip, read_manifests, resolve_path
from models.loading import load_synth_head
from models.synth_head import cut, lfcc_stats, pool_log_odds, speech_windows
from pipeline.errors import EmptyAudioError
from pipeline.telephone import inference_channel

FRAME_S = 0.02  # Whisper encoder frame
WINDOW_FRAMES = 3000  # log-mel frames in one 30 s window
CALL_KINDS = ("dialer_call", "two_party_robot", "human_call", "two_party_human")
COPY_KINDS = ("resynthesis", "vocoder_resynthesis")


def shared_frames(y: np.ndarray, model: object) -> np.ndarray:
    """Encoder frames of consecutive 30 s windows of ``y`` (one per 20 ms), padded like the ASR."""
    import ctranslate2

    feats = model.feature_extractor(y)  # type: ignore[attr-defined]
    out = []
    for start in range(0, max(feats.shape[-1] - 1, 1), WINDOW_FRAMES):
        seg = feats[:, start : start + WINDOW_FRAMES]
        seg = np.pad(seg, ((0, 0), (0, WINDOW_FRAMES - seg.shape[1])))
        view = ctranslate2.StorageView.from_array(np.ascontiguousarray(seg[None], np.float32))
        out.append(np.asarray(model.model.encode(view, to_cpu=True), np.float32)[0])  # type: ignore[attr-defined]
    return np.concatenate(out)


def shared_score(x: np.ndarray, scorer: object) -> float | None:
    head = scorer.head  # type: ignore[attr-defined]
    try:
        y = inference_channel(x)
    except EmptyAudioError:
        return None
    frames = shared_frames(y, scorer.encoder.model)  # type: ignore[attr-defined]
    values, durations = [], []
    for a, b in speech_windows(y, max_window_s=head.spec.max_window_s):
        lo = int(a / FRAME_S)
        f = frames[lo : max(int(b / FRAME_S), lo + 1)]
        whisper = np.concatenate([f.mean(axis=0), f.std(axis=0)]).astype(np.float32)
        x_row = np.concatenate([whisper, lfcc_stats(cut(y, (a, b)))])[None, :]
        values.append(float(head.log_odds(x_row)[0]))
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
        own = scorer.score(x)
        t_own += time.perf_counter() - t
        t = time.perf_counter()
        shared = shared_score(x, scorer)
        t_shared += time.perf_counter() - t
        if own is not None and shared is not None:
            scored.append((int(row.label == "robot"), row.kind, own.log_odds, shared))
    y = np.array([s[0] for s in scored])
    kinds = np.array([s[1] for s in scored])
    own_lo, shared_lo = np.array([s[2] for s in scored]), np.array([s[3] for s in scored])
    print(f"{len(scored)} of {len(rows)} test rows scored both ways")  # noqa: T201
    print(f"time: own {t_own:.0f} s, shared {t_shared:.0f} s (encoder passes included)")  # noqa: T201
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
