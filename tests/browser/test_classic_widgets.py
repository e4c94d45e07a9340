"""The widget lessons on Google Colab's ipywidgets 7.7.1, drawn by a protocol-2 front end.

Colab ships ipywidgets 7.7.1 (notebook 6.5.7, ipykernel 6.17.1, ipython 7.34.0, jupyter_client
7.4.9, traitlets 5.7.1, tornado 6.5.7) and draws its widgets with its own front end (widget
protocol 2, @jupyter-widgets/controls 1.5), which cannot run here; JupyterLab 4 cannot draw
them (test_lab_widgets.py). The closest stand-in is the classic Notebook 6.5.7 page with
ipywidgets 7's widgetsnbextension, which draws the same protocol-2 widgets. This test builds
that (build/classic-notebook/venv, git-ignored, once: Colab's pins; torch and mmlearn come
from the learners' .venv through a .pth file, after the venv's own packages), serves copies of
lessons 02 and 03, runs every cell in headless Chromium, types into the widget's text box,
presses Enter and waits for the result below it to change. Any widget error (in the page, or
in the browser's console) or cell error fails it.

Two departures from Colab, both about the stand-in, not the lessons:
- widgetsnbextension 3.6.6, not Colab's 3.6.10 (Colab never loads its JavaScript): 3.6.7 and
  later are compiled to ES2017 classes, and the Output widget's model, extended Backbone-style,
  loses the static ``_deserialize_state``: "TypeError: n._deserialize_state is not a function",
  and the Output widget (each demo's result area) is never drawn.
- the copies leave out the lessons' saved widget state: it is ipywidgets 8's (controls 2.0.0),
  which Notebook 6 tries to restore on opening ("Cannot find model module
  @jupyter-widgets/controls@2.0.0, LabelStyleModel" in the console; nothing in the page).
Left out: Colab's own front-end code (its widget manager, output frames), google.colab.

    .venv/bin/python -m pytest tests/browser/test_classic_widgets.py -v
"""

import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_lab_widgets import (
    ROOT,
    RUN_ALL_SECONDS,
    WidgetNotDrawn,
    _course_script,
    _free_port,
    _wait,
    _widget_error,
    browser,
    pytestmark,
    server_python,
    wait_for_server,
)

__all__ = ["browser", "pytestmark"]  # the browser fixture and the skip are the Lab test's

VENV = ROOT / "build" / "classic-notebook" / "venv"  # git-ignored
PINS = ["notebook==6.5.7", "ipywidgets==7.7.1", "widgetsnbextension==3.6.6", "ipykernel==6.17.1",
        "ipython==7.34.0", "jupyter_client==7.4.9", "traitlets==5.7.1", "tornado==6.5.7"]
LESSONS = ["02_zero_shot_classification.ipynb", "03_image_search.ipynb"]


def classic_venv() -> Path:
    """Colab's widget stack in a venv of its own that also sees the learners' packages;
    built once (again only if PINS change). Returns its Python."""
    python, done = VENV / "bin" / "python", VENV / "pins.txt"
    if done.exists() and done.read_text() == "\n".join(PINS):
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([str(server_python()), "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS], check=True)
    learners = subprocess.run([str(server_python()), "-c", "import sysconfig;"
                               "print(sysconfig.get_path('purelib'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    own = subprocess.run([str(python), "-c", "import sysconfig;"
                          "print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    Path(own, "zz_learners_venv.pth").write_text(f"import site; site.addsitedir({learners!r})\n")
    done.write_text("\n".join(PINS))
    return python


@pytest.fixture(scope="module")
def classic(tmp_path_factory):
    """A Notebook 6.5.7 server on copies of lessons 02 and 03; yields its address and token."""
    python, folder = classic_venv(), tmp_path_factory.mktemp("classic")
    for lesson in LESSONS:  # copies: the lessons run here are never saved back to notebooks/
        notebook = json.loads((ROOT / "notebooks" / lesson).read_text())
        notebook["metadata"].pop("widgets", None)  # ipywidgets 8's saved state: see above
        (folder / lesson).write_text(json.dumps(notebook))
    port, token = _free_port(), secrets.token_hex(16)
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(
        [str(python), "-m", "notebook", "--no-browser", "--allow-root", f"--port={port}",
         f"--NotebookApp.token={token}", f"--notebook-dir={folder}"], cwd=folder,
        stdout=log, stderr=log, env={**os.environ, **_course_script().OFFLINE})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, token, folder / "server.log", "Notebook 6")
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _kernel_ipywidgets(driver) -> str:
    """The ipywidgets version the open notebook's kernel imports (a silent request)."""
    driver.set_script_timeout(120)
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Jupyter.notebook.kernel.execute('', {shell: {reply: r => { const v ="
        " r.content.user_expressions.v; done(v.status === 'ok' ? v.data['text/plain']"
        " : v.ename + ': ' + v.evalue); }}}, {silent: true, store_history: false,"
        " user_expressions: {v: \"__import__('ipywidgets').__version__\"}});").strip("'")


def _result_below(driver, text_box) -> str:
    """The HTML of the widget's output area, below its controls."""
    return driver.execute_script(
        "const area = arguments[0].closest('.output_area');"
        "return area ? Array.from(area.querySelectorAll('.jupyter-widgets-output-area'))"
        ".map(o => o.innerHTML).join('') : '';", text_box)


def _mathjax_font(message: str) -> bool:
    """Notebook 6's MathJax asks for web fonts it does not ship (a 404, and a font request
    to about:blank that Chromium blocks); it then draws the lessons' formulas with other
    fonts. Not a widget's error."""
    return "MathJax" in message or "Access to font at 'about:blank'" in message


def _errors(driver) -> str:
    """Widget errors in the page or the console, and cell errors; "" if none. (The lessons'
    badges, from colab.research.google.com and mybinder.org, cannot load offline.)"""
    console = [e["message"] for e in driver.get_log("browser")
               if e["level"] == "SEVERE" and "net::ERR_" not in e["message"]
               and not _mathjax_font(e["message"])]
    cells = driver.execute_script(
        "return Jupyter.notebook.get_cells().flatMap(c => (c.output_area ?"
        " c.output_area.outputs : []).filter(o => o.output_type === 'error')"
        ".map(o => o.ename + ': ' + o.evalue));")
    return "\n".join([_widget_error(driver, whole_page=True), *console, *cells]).strip()


def _run_lesson_and_type(driver, classic, notebook: str, typed: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    url, token = classic
    driver.get(f"{url}/notebooks/{notebook}?token={token}")
    _wait(driver, lambda d: d.execute_script(
        "return !!(window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
        " && Jupyter.notebook.kernel.is_connected() && Jupyter.WidgetManager"
        " && Jupyter.WidgetManager._managers.length)"), 120, f"{notebook}'s kernel and widgets")
    version = _kernel_ipywidgets(driver)
    assert version == "7.7.1", f"the kernel imports ipywidgets {version}, not Colab's 7.7.1"
    driver.execute_script("Jupyter.notebook.execute_all_cells()")
    _wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".cell.running"),
          RUN_ALL_SECONDS, f"all cells of {notebook} to run")
    not_run = driver.execute_script(
        "return Jupyter.notebook.get_cells().filter(c => c.cell_type === 'code'"
        " && c.get_text().trim() && typeof c.input_prompt_number !== 'number').length")
    assert not not_run, f"{not_run} cells of {notebook} did not run: {_errors(driver)[:1500]}"
    for _ in range(120):  # a minute for the widget to be drawn, its first result below it
        boxes = driver.find_elements(By.CSS_SELECTOR, ".output_area .widget-text input")
        if boxes and _result_below(driver, boxes[-1]):
            break
        time.sleep(0.5)
    else:
        raise WidgetNotDrawn(_errors(driver)[:1500] or "no text box, or no result below it")
    box, before = boxes[-1], _result_below(driver, boxes[-1])
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(typed, Keys.ENTER)
    _wait(driver, lambda d: _result_below(d, box) not in ("", before), 120,
          f"the result to change after typing {typed!r} and Enter")
    errors = _errors(driver)
    if errors:
        raise WidgetNotDrawn(errors[:1500])


def test_lesson_02_classifier_answers_the_learners_labels(classic, browser):
    _run_lesson_and_type(browser, classic, LESSONS[0], "red circle, blue square, green star")


def test_lesson_03_search_box_answers_a_query(classic, browser):
    _run_lesson_and_type(browser, classic, LESSONS[1], "a small blue square")
