"""The widget lessons as a learner meets them: JupyterLab in a real (headless) browser.

JupyterLab is started with the command `make lab` uses (scripts/course.py), on a free
port of this machine, and Debian's Chromium, driven by Selenium, opens lessons 02 and
03, runs every cell from the Run menu, types into the widget's text box, presses Enter
and waits for the result shown below it to change. A widget that fails to render shows
"Error displaying widget" in the page: that fails the test too.

    make test-browser      (needs: apt-get install chromium chromium-driver)
"""

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
RUN_ALL_SECONDS = 600  # a whole lesson, on a busy 2-core machine

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


def _course_script():
    spec = importlib.util.spec_from_file_location("course", ROOT / "scripts" / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server started as `make lab` starts it; yields its address and token."""
    course = _course_script()
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path_factory.mktemp("lab-settings")  # no workspace of a previous run
    command = course.lab_command(Path(sys.executable), f"--port={port}",
                                 f"--IdentityProvider.token={token}", "--no-browser",
                                 f"--LabApp.workspaces_dir={settings}")
    log = open(settings / "lab.log", "w")
    server = subprocess.Popen([str(c) for c in command], cwd=ROOT, stdout=log, stderr=log,
                              env={**os.environ, **course.OFFLINE})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s: "
                        + (settings / "lab.log").read_text()[-2000:])
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def _wait(driver, condition, seconds: float, what: str):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.5).until(condition)
    except Exception:
        driver.save_screenshot(str(ROOT / "build" / "browser-failure.png"))
        pytest.fail(f"waited {seconds:.0f} s for {what} (screenshot: build/browser-failure.png)")


def _click_menu(driver, menu: str, item: str) -> None:
    """Click ``item`` (its label, as the learner reads it) in the menu bar's ``menu``."""
    from selenium.webdriver.common.by import By

    def labelled(selector: str, text: str):
        return [e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.text == text]
    labelled(".lm-MenuBar-itemLabel", menu)[0].click()
    _wait(driver, lambda d: labelled(".lm-Menu-itemLabel", item), 10, f"the {menu} menu")
    labelled(".lm-Menu-itemLabel", item)[0].click()


def _result_below(driver, text_box) -> str:
    """What the widget shows below its controls: the HTML of the widget's output area."""
    return driver.execute_script(
        "const box = arguments[0].closest('.jp-OutputArea-output');"
        "const outputs = box ? box.querySelectorAll('.widget-output, .jupyter-widgets-output-area')"
        " : [];"
        "return Array.from(outputs).map(o => o.innerHTML).join('');", text_box)


def _run_lesson_and_type(driver, lab, notebook: str, typed: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    url, token = lab
    driver.get(f"{url}/lab/tree/{notebook}?token={token}&reset")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120,
          f"{notebook} to open")
    _wait(driver, lambda d: "Idle" in d.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget")
          .get_attribute("textContent") or True, 60, "the kernel")
    _click_menu(driver, "Run", "Run All Cells")
    selector = ".jp-OutputArea-output .widget-text input[type='text']"
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), RUN_ALL_SECONDS,
          f"the widget of {notebook} (all cells run)")
    box = driver.find_elements(By.CSS_SELECTOR, selector)[-1]
    _wait(driver, lambda d: _result_below(d, box), 120, "the widget's first result below it")
    before = _result_below(driver, box)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(typed, Keys.ENTER)
    _wait(driver, lambda d: _result_below(d, box) not in ("", before), 120,
          f"the result to change after typing {typed!r} and Enter")
    page = driver.find_element(By.TAG_NAME, "body").text
    assert "Error displaying widget" not in page
    assert "Traceback" not in page, page[page.index("Traceback"):][:1500]


def test_lesson_02_classifier_answers_the_learners_labels(lab, browser):
    _run_lesson_and_type(browser, lab, "02_zero_shot_classification.ipynb",
                         "red circle, blue square, green star")


def test_lesson_03_search_box_answers_a_query(lab, browser):
    _run_lesson_and_type(browser, lab, "03_image_search.ipynb", "a small blue square")
