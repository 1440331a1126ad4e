"""Fusion of text, acoustic and structural cues into one calibrated-looking probability.

Until trained models land (issue "Trained detectors"), the fusion is a logistic sum of hand-set
weights: every cue module assigns each :class:`Evidence` a signed weight in logit units (see the
weight tables in ``pipeline/acoustic.py`` and ``pipeline/text_cues.py``), and

    robot_probability = sigmoid(bias + weight_scale * sum(weights))

The numbers are not calibrated; ``Provenance.fusion_method`` says so in every verdict.
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
    "hand-set weights (untrained, not calibrated): logistic sum of cue weights, "
    "see pipeline/fuse.py"
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
