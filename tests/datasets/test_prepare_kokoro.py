"""The Kokoro builder's pure parts: model parts, phonemes to tokens, the seeded draw."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from .test_builders import load_builder

K = load_builder("prepare_kokoro")


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
    out = K.join_parts(parts, expected_sha256=expected.upper() + "\n", out=tmp_path / "m.onnx")
    assert out.read_bytes() == b"".join(blobs)
    # reused as it is: the parts are not read again
    assert K.join_parts([], expected_sha256=expected, out=out) == out


def test_join_parts_refuses_a_wrong_sha256_and_leaves_nothing(tmp_path: Path) -> None:
    parts = write_parts(tmp_path, [b"a", b"b"])
    wrong = hashlib.sha256(b"ba").hexdigest()  # the parts in the wrong order
    with pytest.raises(ValueError, match="sha256"):
        K.join_parts(parts, expected_sha256=wrong, out=tmp_path / "m.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part0.bin", "part1.bin"]


def test_to_tokens_keeps_vocabulary_symbols_and_names_the_dropped_ones() -> None:
    vocab = {"h": 50, "ə": 83, "l": 54, "O": 31, " ": 16, "ˈ": 156}
    tokens, dropped = K.to_tokens("həlˈO͡ x̩x", vocab)
    assert tokens == [50, 83, 54, 156, 31, 16]
    assert dropped == "\u0361x\u0329"  # each once, in order of appearance


def test_english_ipa_maps_onto_misaki_symbols() -> None:
    assert K.map_english_ipa("tʃˈaɪniːz") == "ʧˈIniːz"
    assert K.map_english_ipa("həlˈoʊ  dʒˈʌst\n") == "həlˈO ʤˈʌst"
    assert K.map_english_ipa("wˈɜːk hɜːɹ ɐbˈaʊt") == "wˈɜɹk hɜɹ əbˈWt"


def test_clauses_keep_their_punctuation() -> None:
    assert K.clauses("Hi, it's me. Do you need milk?") == [
        ("Hi", ","),
        ("it's me", "."),
        ("Do you need milk", "?"),
    ]
    assert K.clauses("no mark at the end") == [("no mark at the end", "")]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_english_phonemes_fit_the_vocabulary() -> None:
    vocab = K.read_vocab() if _has_data() else None
    phonemes = K.english_phonemes("Hello, I'm just leaving work now.")
    assert phonemes.endswith(".") and "," in phonemes
    assert "I" in phonemes and "O" in phonemes  # aɪ and oʊ as one symbol each
    if vocab is not None:
        assert K.to_tokens(phonemes, vocab)[1] == ""


def test_pinyin_syllables() -> None:
    assert K.pinyin_syllable_ipa("zh", "i4") == "ꭧɨ↘"  # apical vowel after a retroflex
    assert K.pinyin_syllable_ipa("s", "i1") == "sɨ→"
    assert K.pinyin_syllable_ipa("x", "i1") == "ɕi→"
    assert K.pinyin_syllable_ipa("j", "v3") == "ʨy↓"
    assert K.pinyin_syllable_ipa("", "uo3") == "wo↓"
    assert K.pinyin_syllable_ipa("m", "en") == "mən"  # neutral tone: no mark
    with pytest.raises(ValueError, match="final"):
        K.pinyin_syllable_ipa("b", "xyz2")


def test_the_tone_mark_goes_before_a_nasal_coda_or_after_the_syllable() -> None:
    assert K.pinyin_syllable_ipa("x", "iang2", tone_at="nucleus") == "ɕja↗ŋ"
    assert K.pinyin_syllable_ipa("x", "iang2", tone_at="end") == "ɕjaŋ↗"
    assert K.pinyin_syllable_ipa("", "ng2", tone_at="nucleus") == "ŋ↗"  # syllabic: no vowel
    assert K.pinyin_syllable_ipa("h", "ao3", tone_at="nucleus") == "xau↓"
    with pytest.raises(ValueError, match="tone_at"):
        K.pinyin_syllable_ipa("h", "ao3", tone_at="middle")


def test_mandarin_phonemes_apply_tone_sandhi_and_keep_neutral_tones() -> None:
    pytest.importorskip("pypinyin")
    assert K.mandarin_phonemes("你好，我们吗？") == "ni↗xau↓, wo↓mənma?"
    assert K.mandarin_phonemes("前面", tone_at="nucleus") == "ʨʰjɛ↗nmjɛ↘n"


def texts(language: str, n: int) -> list:
    return [
        K.Text(language, "neutral", f"{language}/{i}", f"line {i}", "authored") for i in range(n)
    ]


def test_plan_is_seeded_and_deals_every_voice_in_turn() -> None:
    voices = K.all_voices(["jf_alpha", "jf_nezumi", "jf_gongitsune", "jf_tebukuro", "jm_kumo"])
    assert len(voices) == 8  # five tables and three blends
    lines = texts("en", 16) + texts("zh", 16)
    first = K.plan(lines, voices)
    assert first == K.plan(lines, voices)  # the same draw on every run
    # the same speed for a (voice, line) pair whatever the input order
    speeds = {(t.group_id, v.name): s for t, v, s in first}
    again = K.plan(list(reversed(lines)), voices)
    assert all(speeds.get((t.group_id, v.name), s) == s for t, v, s in again)
    for language in ("en", "zh"):
        dealt = [v.name for t, v, _ in first if t.language == language]
        assert sorted(set(dealt)) == sorted(v.name for v in voices)
        assert all(dealt.count(v) == 2 for v in set(dealt))
    assert all(K.SPEED_RANGE[0] <= s <= K.SPEED_RANGE[1] for *_, s in first + again)


def test_by_hash_does_not_depend_on_the_input_order() -> None:
    lines = texts("zh", 30)
    assert K.by_hash(lines, 5) == K.by_hash(list(reversed(lines)), 5)
    assert len(K.by_hash(lines, 50)) == 30


def test_a_blend_voice_is_the_mean_of_its_tables() -> None:
    tables = {"a": np.zeros((510, 1, 256)), "b": np.ones((510, 1, 256))}
    blend = K.Voice("a+b", ("a", "b"))
    assert blend.style(tables).shape == (510, 256)
    assert np.allclose(blend.style(tables), 0.5)


def _has_data() -> bool:
    try:
        K.package_file(K.DATA_PACKAGE, "data/vocab.json")
    except ModuleNotFoundError:
        return False
    return True
