"""A picture of the explorer page, taken by Debian's Chromium, headless, through Selenium's WebDriver.

Selenium is heavy: only `console serve --screenshot` and the browser tests import this module.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from common.errors import ConfigError

BROWSER_HINT = "install Debian's chromium and chromium-driver (`sudo make browser-deps`)"


def browser():
    """A headless Chromium driven by chromedriver (ConfigError naming what is missing)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        raise ConfigError(f"no {'chromium' if not chromium else 'chromedriver'} on this machine: {BROWSER_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,2200"):
        options.add_argument(flag)
    try:
        return webdriver.Chrome(options=options, service=Service(driver))
    except WebDriverException as err:
        raise ConfigError(f"Chromium did not start: {err.msg}") from None


def wait_for_verdict(page, timeout: float) -> str:
    """Wait until the page has rendered the rollup and the audit's verdict; return the verdict's text."""
    wait = WebDriverWait(page, timeout, poll_frequency=0.2)
    wait.until(lambda p: p.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"))
    wait.until(lambda p: p.find_element(By.ID, "audit").get_attribute("data-state") != "running")
    wait.until(lambda p: p.find_element(By.TAG_NAME, "body").get_attribute("data-settled"))  # re-read after it
    return page.find_element(By.ID, "audit").text


def screenshot(url: str, path: Path, timeout: float = 180.0) -> str:
    """Open `url`, wait for the audit's verdict, save the whole page as a PNG at `path`; return the verdict."""
    page = browser()
    try:
        page.get(url)
        verdict = wait_for_verdict(page, timeout)
        height = page.execute_script("return document.body.scrollHeight")
        page.set_window_size(1400, min(max(height + 40, 800), 6000))
        path.parent.mkdir(parents=True, exist_ok=True)
        page.save_screenshot(str(path))
        return verdict
    finally:
        page.quit()
