"""The called line's recorded menu before a live agent: the simulated live-agent test calls
with a menu ("Thank you for calling ... for billing, press two") opening the caller's leg,
through the whole shipped detector with the menu rule (``pipeline.queue.find_line_menu``) and
without it.

    PYTHONPATH=. nice -n 5 .venv/bin/python bench/line_menu_agents.py --menu a [--no-baseline]

Four menus (``MENUS``), each a different wording, read by flite's slt voice (English) or
ttskit's Mellotron (Mandarin; ``datasets/README.md``, "ttskit"), go 0.5 s into the caller's leg
at the leg's 99th-percentile level, with the line's sound around them
(``queue_announcements.line_sound``), the call after them; in a stereo call the callee's leg
gets the line's sound meanwhile, in a mono call the menu is in its one channel. No call is a
robot, so every call called robot is a person lost. Needs the generated calls (``make
corpus``); about 5 min a menu (10 with the baseline).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import logging
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from models.training.corpus import CorpusRow, read_manifest
from pipeline.config import load_config
from pipeline.types import ANALYSIS_RATE_HZ as SR
from service.detector import load_detector

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hold_music_agents import CALLS, read_call  # noqa: E402 (sibling bench scripts)
from queue_announcements import english_message, judge, line_sound, mandarin_message  # noqa: E402

MENUS = {
    "a": {
        "en": "Thank you for calling. For sales, press one. For billing, press two. To speak "
        "with an agent, press zero.",
        "zh": "您好，欢迎致电。业务咨询请按一，账单查询请按二，人工服务请按零。",
    },
    "b": {
        "en": "You have reached Riverside Medical Group. If this is an emergency, hang up and "
        "dial nine one one. For appointments, press one. For prescription refills, press two.",
        "zh": "感谢您致电平安保险，查询保单请按一，理赔服务请按二，转人工请按零。",
    },
    "c": {
        "en": "Hello, and thank you for calling City Auto Insurance. Calls may be recorded for "
        "training purposes. If you know your party's extension, you may dial it at any time. "
        "For claims, press one. For a new quote, press two. For all other questions, please "
        "stay on the line.",
        "zh": "您好，欢迎致电城市汽车保险。本次通话可能会被录音。报案理赔请按一，新车投保请按二，"
        "其他业务请不要挂机，稍后为您转接人工客服。",
    },
    "d": {
        "en": "Thanks for calling Brightline Internet. Your call may be monitored or recorded. "
        "To check an order or make a payment, press one. For technical support, press two. To "
        "hear these options again, press nine.",
        "zh": "您好，这里是星河宽带客服中心，为了提高服务质量，您的通话可能会被录音。"
        "办理新装请按一，故障报修请按二，重听请按星号键。",
    },
}


def spoken(menu: dict[str, str]) -> dict[str, np.ndarray | None]:
    """The menu's two languages read aloud (Mandarin None without ttskit)."""
    return {
        "en": english_message(menu["en"]),
        "zh": mandarin_message(menu["zh"].rstrip("。"), "menu"),
    }


def with_menu(row: CorpusRow, menu: np.ndarray) -> bytes:
    """The call of ``row`` opening with ``menu`` on the caller's leg (WAV)."""
    x, caller = read_call(row)
    legs = []
    for c in range(x.shape[1]):
        leg = x[:, c]
        if c == caller:
            loud = menu / np.abs(menu).max() * float(np.percentile(np.abs(leg), 99))
            opening = [line_sound(leg, 1), loud + line_sound(leg, 2, loud.size / SR),
                       line_sound(leg, 3)]  # fmt: skip
        else:
            opening = [line_sound(leg, 4, menu.size / SR + 1.0)]
        legs.append(np.concatenate([*opening, leg]))
    buf = io.BytesIO()
    sf.write(buf, np.stack(legs, axis=1), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--menu", choices=sorted(MENUS), default="a")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without the rule")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    detector = load_detector(load_config())
    menus = spoken(MENUS[args.menu])
    table: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    for row in read_manifest(CALLS):
        extra = dict(row.extra)
        menu = menus[row.language]
        if row.split != "test" or extra.get("caller_kind") != "human_agent" or menu is None:
            continue
        wav = with_menu(row, menu)
        results = {"rule": judge(detector, wav, row.id)}
        if not args.no_baseline:
            with mock.patch("pipeline.detector.find_line_menu", return_value=None):
                results["no rule"] = judge(detector, wav, row.id)
        cell = table[(extra["layout"], row.language)]
        cell["calls"] += 1
        for key, result in results.items():
            cell[f"{key}: robot"] += bool(result.get("robot"))
            cell[f"{key}: refused"] += "refused" in result
        cell["rule: aside"] += bool(results["rule"].get("aside"))
        print(row.id, json.dumps(results), flush=True)
    columns = ["calls", "no rule: robot", "rule: robot", "rule: aside", "rule: refused"]
    print(f"menu {args.menu}")
    print("| layout | language | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for (layout, lang), cell in sorted(table.items()):
        skipped = {"no rule: robot"} if args.no_baseline else set()
        counts = ["-" if c in skipped else str(cell[c]) for c in columns]
        print(f"| {layout} | {lang} | " + " | ".join(counts) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
