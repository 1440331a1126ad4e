"""The web page in a real browser: Playwright driving Debian's chromium (never a downloaded one).

Uploads a recording, waits for the verdict, checks the card, the reasons and the transcript,
plays a transcript line, switches the interface to Chinese; then, in Chinese and English on a
desktop (1280x900) and a phone (390x844): the result's own address, the history, editing the
call details and deleting. Screenshots go to ``out/screenshots/`` (``ROBOCALL_SCREENSHOT_DIR``),
which CI keeps as artefacts for a person to read. Skips when chromium or playwright is absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.evidence.pack import verify_pack
from service.http.app import create_app, get_detector
from tests.service.fake_detector import (
    FakeDetector,
    live_server,
    make_verdict,
    service_settings,
    wav_bytes,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
SCREENSHOTS = Path(
    os.environ.get("ROBOCALL_SCREENSHOT_DIR", Path(__file__).parents[3] / "out" / "screenshots")
)
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def robot_like_wav() -> bytes:
    """A 4 s recording the fake detector labels as robot (even first sha256 digit)."""
    for seed in range(100):
        data = wav_bytes(seconds=4.0, rate=8000, freq_hz=160.0, seed=seed)
        if make_verdict(data, name="x").label.value == "electronic_sales_robot":
            return data
    raise AssertionError("no seed gives a robot verdict")


@contextlib.contextmanager
def result_page(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector: FakeDetector
) -> Iterator[tuple[Any, list[str]]]:
    """The page (English) showing ``detector``'s verdict on an upload, and its script errors."""
    monkeypatch.setenv("ROBOCALL_KEY_DIR", str(tmp_path / "keys"))
    app = create_app(service_settings(tmp_path))
    app.dependency_overrides[get_detector] = lambda: detector
    recording = tmp_path / "call.wav"
    recording.write_bytes(robot_like_wav())
    with live_server(app) as url:
        page = browser.new_context(locale="en-US").new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.set_input_files("#file-input", str(recording))
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        yield page, errors


def test_upload_shows_verdict_reasons_and_transcript(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOCALL_KEY_DIR", str(tmp_path / "keys"))
    app = create_app(service_settings(tmp_path))
    fake = FakeDetector(delay_s=0.3)
    app.dependency_overrides[get_detector] = lambda: fake
    recording = tmp_path / "call.wav"
    recording.write_bytes(robot_like_wav())
    with live_server(app) as url:
        context = browser.new_context(locale="en-US", viewport={"width": 1000, "height": 900})
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        assert page.locator("h1").inner_text() == "Sales robot or human?"
        assert page.locator("#key-row").is_hidden()
        page.set_input_files("#file-input", str(recording))
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)

        card = page.locator("#verdict-card")
        assert "robot" in (card.get_attribute("class") or "")
        assert (
            page.locator("#verdict-label").inner_text()
            == "Electronic sales robot – sales pitch (topic: insurance)"
        )
        assert page.locator("#probability").inner_text() == "87 %"
        assert page.locator("#tones").is_hidden()  # no telephone tones in this verdict
        reasons = page.locator("#reasons li")
        assert reasons.count() == 3
        assert "rises and falls by 0.9 semitones" in reasons.nth(0).inner_text()
        lines = page.locator("#transcript li")
        assert lines.count() == 3
        assert "00:00.0" in lines.nth(0).inner_text()
        assert "阳光保险" in lines.nth(0).inner_text()
        # The parts that decided (pitch, dialler wording), not the whole-call text model.
        suspicious = page.locator("#transcript li.suspicious")
        assert [suspicious.nth(i).get_attribute("data-start") for i in range(2)] == [
            lines.nth(0).get_attribute("data-start"),
            lines.nth(1).get_attribute("data-start"),
        ] and suspicious.count() == 2
        assert page.locator("#download-json").get_attribute("download", timeout=1000)

        # Waveform decoded in the browser: the canvas is not blank.
        page.wait_for_function("() => document.getElementById('wave-note').hidden === true")
        inked = page.evaluate("""() => {
            const c = document.getElementById('wave');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++;
            return n;
        }""")
        assert inked > 500

        # Clicking a line plays that part of the audio (served with Range support).
        start = float(lines.nth(1).get_attribute("data-start") or 0)
        lines.nth(1).locator("button").click()
        page.wait_for_function(
            f"() => document.getElementById('player').currentTime >= {start}", timeout=5000
        )
        page.screenshot(path=str(tmp_path / "result_en.png"), full_page=True)

        # The signed evidence pack of this analysis downloads from the result view.
        with page.expect_download(timeout=30_000) as download:
            page.click("#download-pack")
        pack = tmp_path / "pack.zip"
        download.value.save_as(pack)
        assert download.value.suggested_filename.endswith(".zip")
        assert verify_pack(pack.read_bytes()).ok

        page.click("#lang-switch")
        assert page.locator("#verdict-label").inner_text() == "电子营销机器人，推销（内容：保险）"
        assert page.locator("#result-view h3").first.inner_text() == "判断依据"
        assert reasons.nth(0).inner_text().startswith("音高平均起伏 0.9 个半音")
        page.screenshot(path=str(tmp_path / "result_zh.png"), full_page=True)
        context.close()

    assert not errors, errors
    assert all(u.startswith((url, "blob:", "data:")) for u in requested), requested
    assert (tmp_path / "result_en.png").stat().st_size > 10_000


def test_interface_language_follows_the_browser(browser: Any, tmp_path: Path) -> None:
    app = create_app(service_settings(tmp_path))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    with live_server(app) as url:
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        page.goto(url + "/")
        assert page.locator("h1").inner_text() == "电销机器人还是真人？"
        assert page.locator("#lang-switch").inner_text() == "English"
        assert page.locator("#key-row").is_hidden()  # local mode: no API key field
        page.set_input_files(
            "#file-input",
            files=[{"name": "note.txt", "mimeType": "audio/wav", "buffer": b"not audio at all"}],
        )
        page.wait_for_selector("#error", state="visible")
        assert page.locator("#error").inner_text() == "这不是可识别的录音文件。"
        page.screenshot(path=str(tmp_path / "error_zh.png"))
        context.close()


def test_api_key_prompt_then_upload_with_the_key(browser: Any, tmp_path: Path) -> None:
    from service.http.apikeys import create_key

    app = create_app(service_settings(tmp_path, local_mode=False))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    recording = tmp_path / "call.wav"
    recording.write_bytes(wav_bytes(seconds=2.0, seed=7))
    with live_server(app) as url:
        _, key = create_key(app.state.runtime.store, name="browser")
        context = browser.new_context(locale="en-GB")
        page = context.new_page()
        page.goto(url + "/")
        page.set_input_files("#file-input", str(recording))
        page.wait_for_selector("#key-row", state="visible")
        assert page.locator("#error").inner_text() == "Enter an API key to use this server."
        page.fill("#api-key", key)
        page.set_input_files("#file-input", [])
        page.set_input_files("#file-input", str(recording))
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        assert page.locator("#transcript li").count() == 3
        # The audio came through fetch() with the key (a blob: URL), not a bare <audio src>.
        page.wait_for_function("() => document.getElementById('player').src.startsWith('blob:')")
        context.close()


def test_amr_plays_and_draws_through_the_server_wav(
    browser: Any, tmp_path: Path, amr_wb_path: Path
) -> None:
    app = create_app(service_settings(tmp_path))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    with live_server(app) as url:
        context = browser.new_context(locale="en-US")
        page = context.new_page()
        page.goto(url + "/")
        page.set_input_files("#file-input", str(amr_wb_path))
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        # Chromium has no AMR decoder: the page falls back to the server's WAV copy.
        page.wait_for_function(
            "() => document.getElementById('player').src.endsWith('?format=wav')"
        )
        page.wait_for_function("() => document.getElementById('wave-note').hidden === true")
        context.close()


def _one_line(page: Any, selector: str) -> bool:
    """Every element matching ``selector`` is one line of text (it did not wrap inside)."""
    return bool(
        page.evaluate(
            """(sel) => [...document.querySelectorAll(sel)].every((el) => {
                const lh = parseFloat(getComputedStyle(el).lineHeight) || 20;
                return el.getBoundingClientRect().height < 1.6 * lh;
            })""",
            selector,
        )
    )


@pytest.mark.parametrize("device", ["desktop", "phone"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_result_history_details_and_delete(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str, device: str
) -> None:
    monkeypatch.setenv("ROBOCALL_KEY_DIR", str(tmp_path / "keys"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = f"{lang}_{device}"
    app = create_app(service_settings(tmp_path))
    fake = FakeDetector()
    app.dependency_overrides[get_detector] = lambda: fake
    recording = tmp_path / "call.wav"
    recording.write_bytes(robot_like_wav())
    cut = tmp_path / "cut.wav"
    whole = wav_bytes(seconds=4.0, rate=8000, seed=300)
    cut.write_bytes(whole[: len(whole) // 2])
    words = {
        "zh": ("电子营销机器人，推销（内容：保险）", "音高平均起伏", "倾向机器人", "截断"),
        "en": (
            "Electronic sales robot – sales pitch (topic: insurance)",
            "The pitch of the voice rises and falls",
            "points to a robot",
            "cut off",
        ),
    }[lang]
    locale = "zh-CN" if lang == "zh" else "en-GB"
    with live_server(app) as url:
        context = browser.new_context(
            locale=locale, viewport=VIEWPORTS[device], timezone_id="Asia/Shanghai"
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        page.goto(url + "/")
        page.wait_for_selector("#history", state="visible")
        page.locator("details.call-details summary").click()
        page.fill("#caller-number", "+86 400 123 4567")
        page.fill("#call-time", "2025-06-01T09:30")
        page.set_input_files("#file-input", str(recording))
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        page.wait_for_function("() => document.getElementById('wave-note').hidden === true")
        headline, sentence, tag, warning = words

        # The user's language, plain words, the deciding parts only.
        assert page.locator("#verdict-label").inner_text() == headline
        assert page.locator("#reasons li").first.inner_text().startswith(sentence)
        assert tag in page.locator("#reasons li").first.inner_text()
        text = page.locator("#result-view").inner_text()
        assert "log-odds" not in text and "window(s)" not in text and "100 %" not in text
        assert page.locator("#transcript li.suspicious").count() == 2
        assert page.locator("#transcript li.callee.suspicious").count() == 0
        analysis_id = page.evaluate("location.hash").rsplit("/", 1)[1]
        assert page.input_value("#edit-caller-number") == "+86 400 123 4567"
        stored = app.state.runtime.store.get_analysis(analysis_id)
        assert stored.call_time == "2025-06-01T09:30:00+08:00"  # sent with the zone

        # Layout: legend items never wrap inside; on a phone the time sits above the words.
        assert _one_line(page, ".legend .item")
        ts = page.locator("#transcript li .ts").first.bounding_box()
        words_box = page.locator("#transcript li .text").first.bounding_box()
        if device == "phone":
            assert words_box["y"] >= ts["y"] + ts["height"] - 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        else:
            assert abs(words_box["y"] - ts["y"]) < ts["height"]
        page.screenshot(path=str(SCREENSHOTS / f"result_{shot}.png"), full_page=True)

        # The result has its own address: a reload shows it again, waveform and all.
        page.reload()
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        assert page.locator("#verdict-label").inner_text() == headline
        page.wait_for_function("() => document.getElementById('wave-note').hidden === true")

        # Call details are edited after the upload and kept.
        page.fill("#edit-callee-number", "138 0000 0000")
        page.click("#details-form button[type=submit]")
        page.wait_for_function("() => document.getElementById('details-status').textContent !== ''")
        assert app.state.runtime.store.get_analysis(analysis_id).callee_number == "138 0000 0000"
        page.reload()
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)
        assert page.input_value("#edit-callee-number") == "138 0000 0000"

        # A cut-off recording is accepted with a warning in the user's language.
        page.click("#again")
        page.set_input_files("#file-input", str(cut))
        page.wait_for_selector("#warnings", state="visible", timeout=15_000)
        assert warning in page.locator("#warnings").inner_text()

        # History: both analyses, newest first, each linking to its result.
        page.click("#again")
        page.wait_for_function("() => document.querySelectorAll('#history-list li a').length === 2")
        links = page.locator("#history-list li a")
        assert links.nth(1).get_attribute("href") == f"#/analyses/{analysis_id}"
        assert headline in links.nth(1).inner_text()
        page.screenshot(path=str(SCREENSHOTS / f"history_{shot}.png"), full_page=True)
        links.nth(1).click()
        page.wait_for_selector("#verdict-card", state="visible", timeout=15_000)

        # Delete from the result: gone from the store, the history and its address.
        page.click("#delete")
        page.wait_for_function("() => document.querySelectorAll('#history-list li a').length === 1")
        assert app.state.runtime.store.get_analysis(analysis_id) is None
        page.goto(f"{url}/#/analyses/{analysis_id}")
        page.wait_for_selector("#error", state="visible")
        assert ("不存在" if lang == "zh" else "does not exist") in page.locator(
            "#error"
        ).inner_text()
        context.close()
    assert not errors, errors


def test_an_uncertain_verdict_shows_that_it_cannot_tell_and_the_band(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: in the band the card is neither robot nor person, and the meter shades it."""
    import dataclasses

    from pipeline.types import Label, Verdict

    class UncertainDetector(FakeDetector):
        def detect(self, src: bytes, *, name: str | None = None) -> Verdict:
            verdict = super().detect(src, name=name)
            return dataclasses.replace(
                verdict, label=Label.HUMAN, robot_probability=0.63, threshold=0.9,
                person_threshold=0.1,
            )  # fmt: skip

    with result_page(browser, tmp_path, monkeypatch, UncertainDetector()) as (page, errors):
        card = page.locator("#verdict-card")
        classes = (card.get_attribute("class") or "").split()
        assert "uncertain" in classes and "robot" not in classes and "human" not in classes
        assert (
            page.locator("#verdict-label")
            .inner_text()
            .startswith("Cannot tell whether a robot or a live person called (leans robot, 63 %)")
        )
        assert page.locator("#threshold").inner_text() == (
            "(robot at 90 % or more; cannot tell from 10 %)"
        )
        band = page.locator("#meter-band").evaluate("e => [e.style.left, e.style.width]")
        assert band == ["10%", "80%"]
        assert errors == []


def test_a_mono_call_split_in_two_names_the_caller_s_voice_and_the_callee_s_lines(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: the page says which voice was heard as the caller and labels the other's line
    (the fake transcript's lines: 0-1.3, 1.3-2.7, 2.7-4 s; the caller's voice from 1.4 s)."""
    import dataclasses

    from pipeline.types import Verdict

    class MonoDetector(FakeDetector):
        def detect(self, src: bytes, *, name: str | None = None) -> Verdict:
            verdict = super().detect(src, name=name)
            return dataclasses.replace(verdict, caller_turns=((1.4, 4.0),), tones=((0.0, 1.2),))

    with result_page(browser, tmp_path, monkeypatch, MonoDetector()) as (page, errors):
        side = page.locator("#caller-side")
        assert side.is_visible() and side.inner_text().startswith(
            "Mono recording, two voices told apart: the caller is taken to be the one speaking 3 s"
        )
        tones = page.locator("#tones")
        assert tones.is_visible() and tones.inner_text().startswith(
            "Telephone tones (ringing, a busy tone or beeps) for 1.2 s, first at 0:00.0"
        )
        lines = page.locator("#transcript li")
        assert [lines.nth(i).get_attribute("class").split()[-1] for i in range(3)] == [
            "callee",
            "caller",
            "caller",
        ]
        assert "suspicious" not in (lines.nth(0).get_attribute("class") or "")
        assert errors == []
