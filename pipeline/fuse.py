"""Fusion of text, acoustic and structural cues into one probability.

The fusion is a logistic sum: every cue assigns its :class:`Evidence` a signed weight in logit
units, and

    robot_probability = sigmoid(bias + weight_scale * sum(weights))

The trained heads (``synthetic_voice``, ``robot_script_text``) contribute their calibrated
log-odds, clipped; the rule cues carry hand-set weights from the tables in
``pipeline/acoustic.py`` and ``pipeline/text_cues.py``. The sum itself (bias, one weight per cue)
is not fitted on data yet, so the probability is not calibrated; ``Provenance.fusion_method``
says so in every verdict.
"""

from __future__ import annotations

import dataclasses
import math

from pipeline.config import FusionConfig
from pipeline.types import (
    AcousticCues,
    AudioInfo,
    Label,
    Provenance,
    TextScore,
    Transcript,
    Verdict,
)

FUSION_METHOD = (
    "logistic sum of cue weights: trained heads add their calibrated log-odds, other cues "
    "hand-set weights; the sum is not fitted, so the probability is not calibrated "
    "(pipeline/fuse.py)"
)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def fuse(
    *,
    text: TextScore,
    cues: AcousticCues,
    transcript: Transcript,
    other_transcript: Transcript | None,
    audio: AudioInfo,
    provenance: Provenance,
    config: FusionConfig,
) -> Verdict:
    """Combine the branches into a :class:`Verdict`.

    Parameters
    ----------
    text, cues : TextScore, AcousticCues
        The branches' conclusions; their evidence weights are robot-logit contributions.
    transcript, other_transcript : Transcript, Transcript or None
        The caller's and (stereo only) the callee's transcripts, carried into the verdict.
    audio, provenance : AudioInfo, Provenance
    config : FusionConfig
        ``bias``, ``weight_scale`` and the decision ``threshold``.

    Returns
    -------
    Verdict
        Evidence sorted by ``|weight|``, strongest first; weights as applied (scaled).
    """
    evidence = tuple(
        dataclasses.replace(e, weight=e.weight * config.weight_scale)
        for e in (*text.evidence, *cues.evidence)
    )
    evidence = tuple(sorted(evidence, key=lambda e: (-abs(e.weight), e.name)))
    probability = sigmoid(config.bias + sum(e.weight for e in evidence))
    label = Label.ROBOT if probability >= config.threshold else Label.HUMAN
    return Verdict(
        label=label,
        robot_probability=probability,
        threshold=config.threshold,
        sales_probability=text.sales_probability,
        topic=text.topic,
        evidence=evidence,
        transcript=transcript,
        other_party_transcript=other_transcript,
        audio=audio,
        provenance=provenance,
    )
