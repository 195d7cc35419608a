"""The playground in a real headless Chromium (Debian's chromium and chromium-driver,
installed by ``make setup``), driven by Selenium against a real server: a message sent,
streamed reasoning in its own panel, thinking switched off for a plain answer, an image
uploaded, an API key typed in. A screenshot is saved in the test's tmp dir on failure."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omni_sglang.media import synth
from tests.conftest import Server

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: The random model's answers are fixed by the seed; this one starts with neither an end
#: of turn nor an end of reasoning, so both panels have text to show.
SEED = "7"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(module_server_factory) -> Server:  # type: ignore[no-untyped-def]
    return module_server_factory("--api-key", "s3cret", "--no-warmup")  # type: ignore[no-any-return]


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No GPU, no sandbox as root, and none of Chromium's own network traffic (this
    # machine's network is closed: those connections would be refused at every start).
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    report = getattr(request.node, "rep_call", None)  # conftest's report hook
    if report is None or report.failed:
        driver.save_screenshot(str(tmp_path / "playground.png"))
        print(f"screenshot: {tmp_path / 'playground.png'}")
    driver.quit()


def until(driver: Any, what: Callable[[], Any], seconds: float = 120) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda _: what())


def by_id(driver: Any, testid: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def send(driver: Any, text: str) -> Any:
    """Type and send a message; returns the new assistant turn once it has finished."""
    before, errors = len(by_id(driver, "assistant")), len(by_id(driver, "error"))
    by_id(driver, "prompt")[0].send_keys(text)
    by_id(driver, "send")[0].click()
    until(driver, lambda: len(by_id(driver, "assistant")) > before)
    turn = by_id(driver, "assistant")[-1]
    until(driver, lambda: by_id(driver, "send")[0].is_enabled() and turn.text)
    assert len(by_id(driver, "error")) == errors, by_id(driver, "error")[-1].text
    return turn


def test_chat_reasoning_thinking_switch_and_image(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    key = by_id(browser, "api-key")[0]
    key.send_keys("s3cret")
    by_id(browser, "seed")[0].send_keys(SEED)
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", key)
    until(browser, lambda: by_id(browser, "model")[0].get_attribute("value"))

    # Thinking on: the reasoning streams into its own panel, the stats say how fast.
    turn = send(browser, "Hello")
    reasoning = turn.find_element(By.CSS_SELECTOR, '[data-testid="reasoning"]')
    assert reasoning.is_displayed()
    assert reasoning.find_element(By.TAG_NAME, "pre").get_attribute("textContent")
    assert "TTFT" in turn.find_element(By.CSS_SELECTOR, '[data-testid="stats"]').text
    assert "curl -N" in by_id(browser, "curl")[0].get_attribute("textContent")

    # Thinking off: a plain answer, no reasoning panel.
    by_id(browser, "thinking")[0].click()
    assert not by_id(browser, "budget")[0].is_enabled()
    turn = send(browser, "And now?")
    assert not turn.find_element(By.CSS_SELECTOR, '[data-testid="reasoning"]').is_displayed()
    assert turn.find_element(By.CSS_SELECTOR, '[data-testid="content"]').text

    # An image, sent as a base64 part, shown in the user's turn.
    image = tmp_path / "red.png"
    image.write_bytes(synth.image_bytes("PNG", (64, 48)))
    by_id(browser, "files")[0].send_keys(str(image))
    until(browser, lambda: "image: red.png" in by_id(browser, "attachments")[0].text)
    send(browser, "What is this?")
    preview = browser.find_elements(By.CSS_SELECTOR, ".msg.user img.media")[-1]
    source = preview.get_attribute("src")
    assert source.startswith("data:image/png;base64,")
    assert base64.b64decode(source.split(",", 1)[1]) == image.read_bytes()
    assert "image_url" in by_id(browser, "curl")[0].get_attribute("textContent")


def test_a_wrong_key_is_shown(server: Server, browser: Any) -> None:
    browser.get(server.url + "/")
    until(browser, lambda: by_id(browser, "error"))
    assert "api key" in by_id(browser, "error")[0].text.lower()
