"""Kokoro run by our own code: model parts, phonemes to tokens (``models/training/kokoro_tts.py``;
the builder's own parts are tested in ``tests/datasets/test_prepare_kokoro.py``)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from models.training import kokoro_tts as KT


def write_parts(tmp_path: Path, blobs: list[bytes]) -> list[Path]:
    paths = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"part{i}.bin"
        path.write_bytes(blob)
        paths.append(path)
    return paths


def test_join_parts_concatenates_in_order_and_checks_the_sha256(tmp_path: Path) -> None:
    blobs = [b"first-", bytes(range(256)) * 9000, b"-last"]  # one part over the 1 MiB block
    parts = write_parts(tmp_path, blobs)
    expected = hashlib.sha256(b"".join(blobs)).hexdigest()
    out = KT.join_parts(parts, expected_sha256=expected.upper() + "\n", out=tmp_path / "m.onnx")
    assert out.read_bytes() == b"".join(blobs)
    # reused as it is: the parts are not read again
    assert KT.join_parts([], expected_sha256=expected, out=out) == out


def test_join_parts_refuses_a_wrong_sha256_and_leaves_nothing(tmp_path: Path) -> None:
    parts = write_parts(tmp_path, [b"a", b"b"])
    wrong = hashlib.sha256(b"ba").hexdigest()  # the parts in the wrong order
    with pytest.raises(ValueError, match="sha256"):
        KT.join_parts(parts, expected_sha256=wrong, out=tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part0.bin", "part1.bin"]


def test_to_tokens_keeps_vocabulary_symbols_and_names_the_dropped_ones() -> None:
    vocab = {"h": 50, "ə": 83, "l": 54, "O": 31, " ": 16, "ˈ": 156}
    tokens, dropped = KT.to_tokens("həlˈO͡ x̩x", vocab)
    assert tokens == [50, 83, 54, 156, 31, 16]
    assert dropped == "\u0361x\u0329"  # each once, in order of appearance


def test_english_ipa_maps_onto_misaki_symbols() -> None:
    assert KT.map_english_ipa("tʃˈaɪniːz") == "ʧˈIniːz"
    assert KT.map_english_ipa("həlˈoʊ  dʒˈʌst\n") == "həlˈO ʤˈʌst"
    assert KT.map_english_ipa("wˈɜːk hɜːɹ ɐbˈaʊt") == "wˈɜɹk hɜɹ əbˈWt"


def test_clauses_keep_their_punctuation() -> None:
    assert KT.clauses("Hi, it's me. Do you need milk?") == [
        ("Hi", ","),
        ("it's me", "."),
        ("Do you need milk", "?"),
    ]
    assert KT.clauses("no mark at the end") == [("no mark at the end", "")]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_english_phonemes_fit_the_vocabulary() -> None:
    vocab = KT.read_vocab() if _has_data() else None
    phonemes = KT.english_phonemes("Hello, I'm just leaving work now.")
    assert phonemes.endswith(".") and "," in phonemes
    assert "I" in phonemes and "O" in phonemes  # aɪ and oʊ as one symbol each
    if vocab is not None:
        assert KT.to_tokens(phonemes, vocab)[1] == ""


def test_pinyin_syllables() -> None:
    assert KT.pinyin_syllable_ipa("zh", "i4") == "ꭧɨ↘"  # apical vowel after a retroflex
    assert KT.pinyin_syllable_ipa("s", "i1") == "sɨ→"
    assert KT.pinyin_syllable_ipa("x", "i1") == "ɕi→"
    assert KT.pinyin_syllable_ipa("j", "v3") == "ʨy↓"
    assert KT.pinyin_syllable_ipa("", "uo3") == "wo↓"
    assert KT.pinyin_syllable_ipa("m", "en") == "mən"  # neutral tone: no mark
    with pytest.raises(ValueError, match="final"):
        KT.pinyin_syllable_ipa("b", "xyz2")


def test_the_tone_mark_goes_before_a_nasal_coda_or_after_the_syllable() -> None:
    assert KT.pinyin_syllable_ipa("x", "iang2", tone_at="nucleus") == "ɕja↗ŋ"
    assert KT.pinyin_syllable_ipa("x", "iang2", tone_at="end") == "ɕjaŋ↗"
    assert KT.pinyin_syllable_ipa("", "ng2", tone_at="nucleus") == "ŋ↗"  # syllabic: no vowel
    assert KT.pinyin_syllable_ipa("h", "ao3", tone_at="nucleus") == "xau↓"
    with pytest.raises(ValueError, match="tone_at"):
        KT.pinyin_syllable_ipa("h", "ao3", tone_at="middle")


def test_mandarin_phonemes_apply_tone_sandhi_and_keep_neutral_tones() -> None:
    pytest.importorskip("pypinyin")
    assert KT.mandarin_phonemes("你好，我们吗？") == "ni↗xau↓, wo↓mənma?"
    assert KT.mandarin_phonemes("前面", tone_at="nucleus") == "ʨʰjɛ↗nmjɛ↘n"


def _has_data() -> bool:
    try:
        KT.package_file(KT.DATA_PACKAGE, "data/vocab.json")
    except ModuleNotFoundError:
        return False
    return True
