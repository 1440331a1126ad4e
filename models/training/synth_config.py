"""The synthetic-voice head's training config: everything that decides the trained head.

``TrainConfig`` is copied into the run directory and into the weights' metadata
(``meta.training.config``), and read back from them (``from_dict``), so a head says how it was
made. The rows, features and cache it decides are in ``synth_data.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from models.synth_head import FeatureSpec

# How training rows are weighted (``synth_fit.row_weights``), in tie-break order: "class" gives
# each class the same total; "source" also gives every recording source of a class the same
# total (issue 12: the leave-one-source-out study, docs/unseen_sources.md).
ROW_WEIGHTINGS = ("class", "source")
NAP_CLASSES = ("people", "both")  # whose between-source scatter the projection removes


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Everything that decides the trained head (copied into the run dir and the weights)."""

    # single clips; kokoro_train: a 2025 neural TTS (datasets/prepare_kokoro.py --train);
    # ttskit_train: a multi-speaker Mandarin Mellotron + MelGAN (datasets/prepare_ttskit.py)
    manifests: tuple[str, ...] = (
        "shared",
        "tts_en",
        "resynth",
        "vocoded",
        "kokoro/kokoro_train_v1",
        "ttskit/ttskit_train_v1",
    )
    mixed_manifest: str = "mixed"  # call mixtures: dev picks the pooling, test reports it
    languages: tuple[str, ...] = ("en", "zh")  # product languages; ko/CSS10 rows are left out
    max_train_per_group: int = 250  # train rows per robot engine family / human source (hash)
    max_eval_per_group: int = 250  # leave-one-out test rows per engine family (hash)
    # Copy-synthesis: WORLD / Griffin-Lim / neural-vocoder copies of human recordings. After an
    # 8 kHz mu-law channel they are nearly indistinguishable from their sources, and at full
    # weight they cost the TTS side; at weight 0 the English folds lose their only robots with
    # the human sources' voices and the head learns "English = person". Their weight is
    # chosen on dev from the grid (docs/evaluation.md, "Training data").
    copy_kinds: tuple[str, ...] = ("resynthesis", "vocoder_resynthesis")
    copy_weight_grid: tuple[float, ...] = (0.3,)
    # Whisper + LFCC: equal to Whisper alone within noise on dev, a little better on the dev
    # calls (docs/evaluation.md, "Features"); LFCC costs ~10 ms a window.
    spec: FeatureSpec = field(default_factory=lambda: FeatureSpec(blocks=("whisper", "lfcc")))
    # L2 penalty per row on standardised features: the selection keeps one value (the lowest
    # criterion, or the incumbent's within ``selection_tolerance``; the run's resolved config
    # and the weights record it).
    l2_grid: tuple[float, ...] = (1e-2, 1e-1, 1.0)
    # Weight of the people-only density (models.synth_head.PeopleDensity) added to the logistic
    # logit: one-class scoring caught the held-out commercial voices better than the two-class
    # head (docs/voice_generalisation.md); chosen by the selection criterion. (0.0,) = none.
    density_alpha_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    # Issue 12: with (True) or without (False) the clip's AASIST embedding appended to
    # ``spec``'s blocks; chosen by the same criterion (ties: without, the cheaper). The grids
    # above are the neighbourhood of the session-3 choice (l2 0.1, copies 0.3, density 1; the
    # full 4 x 3 x 6 grid took 65 min on the loaded 2 cores). Session 7 keeps only the blocks
    # with AASIST, to make room for ``row_weights_grid``: in the session-4 selection the best
    # setting without it scored 0.317 against 0.254 with it (SYNTH_HEAD.md, selection table).
    aasist_grid: tuple[bool, ...] = (True,)
    # Issue 12, session 7: the row weighting (ROW_WEIGHTINGS), chosen by the same criterion
    # (ties: "class"). Source-balanced weights without the people density helped people and
    # engines of unseen sources in the leave-one-source-out study (docs/unseen_sources.md).
    row_weights_grid: tuple[str, ...] = ROW_WEIGHTINGS
    density_dim: int = 64  # principal components of the people's features it keeps
    # Issue 12, 2026-12-06: the criterion's paired resampling noise has a standard deviation
    # of 0.002-0.004 (docs/voice_generalisation.md, section 14), so the settings within
    # ``selection_tolerance`` of the lowest criterion are ties. Among them ``incumbent`` (l2,
    # copy weight, density weight, row weighting: the settings of the heads shipped since
    # Kokoro joined training, 7313557a and da1122bd, whose held-out figures are measured) is
    # kept, so a change of recipe needs a criterion better by more than its noise; without it
    # in the ties, the lowest wins.
    selection_tolerance: float = 0.006
    incumbent: tuple[float, float, float, str] = (0.1, 0.3, 1.0, "source")
    # Issue 12, nuisance attribute projection (``synth_fit.nuisance_directions``): the top
    # ``nap_dim`` directions along which the training sources of one class differ (scatter of
    # their mean standardised features) are projected out of the rows before the logistic fit,
    # so the coefficients carry no part along them (0 = off, the shipped head). ``nap_classes``:
    # the scatter of the people sources ("people") or of both classes' ("both");
    # ``nap_per_block``: ``nap_dim`` directions in each feature block instead of over all.
    nap_dim: int = 0
    nap_classes: str = "people"
    nap_per_block: bool = False
    # Selection (models/training/synth_select.py): a TTS/VC family with this many rows among
    # the train and dev-select rows is held out as one fold, beside one of `people_folds`
    # sha1 groups of the people; a human recording source with `min_fold_people` rows there
    # is held out as one people-source fold.
    min_fold_robots: int = 20
    people_folds: int = 4
    min_fold_people: int = 20
    salt: str = "synth-v1"  # seeds crops and channels; change it and every clip changes
    threshold: float = 0.5  # shipped decision threshold on the calibrated probability
    quick: bool = False  # tests: a handful of rows, no mixed calls
    quick_rows: int = 8  # per split and label in quick mode
    manifest_dir: str = ""  # folder of the JSONL manifests; "" = datasets/manifests

    def __post_init__(self) -> None:
        if not self.l2_grid or min(self.l2_grid) <= 0:
            raise ValueError(f"l2_grid must hold values > 0, got {self.l2_grid}")
        if not self.copy_weight_grid or min(self.copy_weight_grid) < 0:
            raise ValueError(f"copy_weight_grid must hold values >= 0, got {self.copy_weight_grid}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.max_train_per_group < 1 or self.max_eval_per_group < 1:
            raise ValueError("max_*_per_group must be >= 1")
        if not self.density_alpha_grid or min(self.density_alpha_grid) < 0:
            raise ValueError(f"density_alpha_grid must hold values >= 0: {self.density_alpha_grid}")
        if not self.row_weights_grid or set(self.row_weights_grid) - set(ROW_WEIGHTINGS):
            raise ValueError(
                f"row_weights_grid must hold values of {ROW_WEIGHTINGS}: {self.row_weights_grid}"
            )
        if not self.aasist_grid:
            raise ValueError("aasist_grid must hold True and/or False")
        if "aasist" in self.spec.blocks and False in self.aasist_grid:
            raise ValueError("spec has the aasist block: aasist_grid must be (True,)")
        if self.nap_dim < 0:
            raise ValueError(f"nap_dim must be >= 0, got {self.nap_dim}")
        if self.nap_classes not in NAP_CLASSES:
            raise ValueError(f"nap_classes must be one of {NAP_CLASSES}, got {self.nap_classes!r}")
        if self.selection_tolerance < 0:
            raise ValueError(f"selection_tolerance must be >= 0, got {self.selection_tolerance}")
        if self.density_dim < 1:
            raise ValueError(f"density_dim must be >= 1, got {self.density_dim}")
        if min(self.min_fold_robots, self.people_folds, self.min_fold_people) < 1:
            raise ValueError("min_fold_robots, people_folds and min_fold_people must be >= 1")

    @property
    def l2(self) -> float:
        """The penalty once resolved (one grid value); the largest while still a grid."""
        return max(self.l2_grid)

    @property
    def copy_weight(self) -> float:
        """Copy-synthesis row weight once resolved; the largest while still a grid."""
        return max(self.copy_weight_grid)

    @property
    def density_alpha(self) -> float:
        """People-density weight once resolved; the largest while still a grid."""
        return max(self.density_alpha_grid)

    @property
    def row_weights(self) -> str:
        """Row weighting once resolved; the first of the grid (in tie-break order) while still
        a grid."""
        return min(self.row_weights_grid, key=ROW_WEIGHTINGS.index)

    def resolved(
        self,
        *,
        l2: float,
        copy_weight: float,
        density_alpha: float | None = None,
        row_weights: str | None = None,
    ) -> TrainConfig:
        """One setting; ``density_alpha`` or ``row_weights`` None keeps the config's own grid."""
        out = dataclasses.replace(self, l2_grid=(l2,), copy_weight_grid=(copy_weight,))
        if density_alpha is not None:
            out = dataclasses.replace(out, density_alpha_grid=(density_alpha,))
        if row_weights is not None:
            out = dataclasses.replace(out, row_weights_grid=(row_weights,))
        return out

    def with_aasist(self, on: bool) -> TrainConfig:
        """The config with (or without) the aasist block resolved into ``spec``."""
        window = self.spec.window_blocks
        blocks = (*window, "aasist") if on else window
        spec = dataclasses.replace(self.spec, blocks=blocks)
        return dataclasses.replace(self, spec=spec, aasist_grid=(on,))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["spec"] = self.spec.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config :meth:`to_dict` wrote (a head's ``meta.training.config``); a head trained
        before ``row_weights_grid`` existed was fitted with class-balanced weights."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {unknown}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "spec"
        }
        values.setdefault("row_weights_grid", ("class",))
        if "spec" in raw:
            values["spec"] = FeatureSpec.from_dict(raw["spec"])
        return cls(**values)
