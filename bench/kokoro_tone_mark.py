"""Where Kokoro's Mandarin tone mark goes, chosen by the shipped ASR's CER (issue 12).

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/kokoro_tone_mark.py

The first ``--clips`` Mandarin clips of ``datasets/prepare_kokoro.py``'s plan (same texts, voices
and speeds) are synthesised with each ``tone_at`` of
``models.training.kokoro_tts.pinyin_syllable_ipa`` (after the syllable, or before a nasal coda),
resampled to 16 kHz and transcribed by the shipped
ASR (``models.loading.load_transcriber``, the default config); CER against the input text with
``bench/asr_quality``'s normalisation. The builder keeps the lower (``kokoro_tts.TONE_AT``).
Nothing is written; prints one line per setting.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "datasets"), str(REPO / "bench")]


def main(argv: list[str] | None = None) -> int:
    import prepare_kokoro as K
    from asr_quality import error_rate, normalise
    from scipy import signal

    from models.loading import load_transcriber
    from models.training import kokoro_tts as KT
    from pipeline.config import AsrConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16, help="Mandarin clips per setting")
    args = parser.parse_args(argv)
    vocab, tables = KT.read_vocab(), KT.read_style_tables()
    plan = K.plan(K.read_texts(40), K.all_voices(tables))
    jobs = [job for job in plan if job[0].language == "zh"][: args.clips]
    session = KT.load_session(KT.model_file())
    asr = load_transcriber(AsrConfig())
    refs = [normalise(t.text, unit="cer", language="zh") for t, _, _ in jobs]
    for tone_at in ("end", "nucleus"):
        started = time.monotonic()
        hyps = []
        for text, voice, speed in jobs:
            tokens, _ = KT.to_tokens(KT.mandarin_phonemes(text.text, tone_at=tone_at), vocab)
            x = KT.synthesise(session, tokens, voice.style(tables), speed)
            heard = asr.transcribe(signal.resample_poly(x, 2, 3).astype("float32"))
            hyps.append(normalise(heard.text, unit="cer", language="zh"))
        cer = error_rate(refs, hyps, unit="cer")
        seconds = time.monotonic() - started
        sys.stdout.write(
            f"tone_at={tone_at}: CER {100 * cer:.1f} % ({len(jobs)} clips, {seconds:.0f} s)\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
