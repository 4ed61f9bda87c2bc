"""A real headless Chromium for page tests, driven by Selenium (Debian: chromium and chromium-driver)."""

from __future__ import annotations

import shutil

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


# How long a page may take to load under a busy CI machine.
PAGE_LOAD_WAIT_S = 15


def headless_chromium():
    """A Selenium driver of headless Chromium, or the test skipped saying what to install."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("Selenium is not installed: pip install -e '.[test]'")
    binary = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "Chromium not found: apt-get install chromium chromium-driver (scripts/install.sh --test)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    # A page reached by a click or a form loads while the test reads on: look for elements until they appear.
    browser.implicitly_wait(PAGE_LOAD_WAIT_S)
    return browser


def after_navigation(browser, action) -> None:
    """Run `action` (a click or a form submit) and wait until the page it leads to has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = browser.find_element("tag name", "html")
    action()
    WebDriverWait(browser, PAGE_LOAD_WAIT_S).until(expected_conditions.staleness_of(page))
