"""Every notebook, run by clicking Run All in real JupyterLab in headless Chromium.

nbval proves the kernel side; this proves what a reader sees: no cell shows an error, the
live widgets move, and typing in a widget reaches the server. Run alone with
``pytest -m jupyterlab``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import SHOTS
from .jupyter_lab import running_lab

pytestmark = [pytest.mark.jupyterlab, pytest.mark.browser]

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SETTINGS = {  # a reader's defaults, minus autosave (the files must not change) and the network
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                     "checkForUpdates": False},
}
CELL_TIMEOUT = 120  # s for a whole notebook to finish running
LAST_CELL_SAYS = "demo threads left: []"  # what every notebook's clean-up cell prints


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1, no token, autosave off; yields its base URL."""
    settings = tmp_path_factory.mktemp("lab-settings")
    for name, values in SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    with running_lab(port, [
        "--IdentityProvider.token=", "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={NOTEBOOKS}", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('lab-workspaces')}",
    ], "/api/status", tmp_path_factory.mktemp("lab-log")):
        yield f"http://127.0.0.1:{port}"


def code_cells(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def wait_for_kernel(base: str, name: str, timeout: float = 60) -> None:
    """The page says idle before a kernel exists: ask the server for the session instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for session in get_json(f"{base}/api/sessions"):
            if session["path"].endswith(name) and session["kernel"]["execution_state"] == "idle":
                return
        time.sleep(0.25)
    pytest.fail(f"no idle kernel for {name} within {timeout} s")


def run_menu(page, command: str) -> None:
    """Click Run in the menu bar, then the item for ``command`` (e.g. ``runmenu:run-all``)."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def wait_until_executed(page, count: int) -> list[str]:
    """Wait until the first ``count`` code cells show an execution count, or running stopped
    at an error (JupyterLab then leaves the rest unrun); return the prompts."""
    page.wait_for_function(
        """n => {
            const prompts = [...document.querySelectorAll(
                '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
            const stopped = document.querySelector(
                '.jp-Notebook [data-mime-type="application/vnd.jupyter.stderr"]');
            return !prompts.some(p => p.includes('*')) && (stopped ||
                prompts.slice(0, n).every(p => /\\[\\d+\\]/.test(p)));
        }""",
        arg=count, timeout=CELL_TIMEOUT * 1000, polling=250,
    )
    return page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def errors_shown(page, cells: list[dict]) -> list[str]:
    """Error outputs in cells that are not tagged to raise on purpose."""
    allowed = [("raises-exception" in c.get("metadata", {}).get("tags", [])) for c in cells]
    shown = page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
        .map(cell => [...cell.querySelectorAll(
            '[data-mime-type="application/vnd.jupyter.stderr"], .jp-OutputArea-output')]
            .filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
                         && /Traceback|Error/.test(o.textContent))
            .map(o => o.textContent.slice(0, 400)))""")
    return [f"cell {i}: {text}" for i, outputs in enumerate(shown) if not allowed[i]
            for text in outputs]


def notebook_ids() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("name", notebook_ids())
def test_run_all_in_jupyterlab(lab, browser, name):
    notebook = NOTEBOOKS / name
    before = hashlib.sha256(notebook.read_bytes()).hexdigest()
    cells = code_cells(notebook)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # A workspace of its own, reset: only this notebook is open in the page.
        page.goto(f"{lab}/lab/workspaces/{notebook.stem}/tree/{name}?reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        wait_for_kernel(lab, name)
        # Run everything above the last cell, look at the live widgets while they live,
        # then run the last cell, which stops everything the notebook started.
        last = page.locator(".jp-Notebook .jp-CodeCell").last
        last.locator(".jp-InputArea-prompt").click()
        run_menu(page, "notebook:run-all-above")
        prompts = wait_until_executed(page, len(cells) - 1)
        assert errors_shown(page, cells) == []
        assert all(re.search(r"\[\d+\]", p) for p in prompts[:-1]), prompts
        check_live_widgets(page)
        last.locator(".jp-InputArea-prompt").click()  # typing selected another cell
        run_menu(page, "notebook:run-cell")
        prompts = wait_until_executed(page, len(cells))
        assert errors_shown(page, cells) == []
        assert execution_count(prompts[-1]) > max(map(execution_count, prompts[:-1]))
        assert LAST_CELL_SAYS in last.locator(".jp-OutputArea").inner_text()
    finally:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SHOTS / f"lab-{notebook.stem}.png", full_page=False)
        page.close()
        context.close()
        shut_down_kernels(lab)
    assert hashlib.sha256(notebook.read_bytes()).hexdigest() == before, "the file changed"


def execution_count(prompt: str) -> int:
    found = re.search(r"\[(\d+)\]", prompt)
    assert found is not None, f"no execution count in {prompt!r}"
    return int(found.group(1))


def shut_down_kernels(base: str) -> None:
    for session in get_json(f"{base}/api/sessions"):
        request = urllib.request.Request(f"{base}/api/sessions/{session['id']}",
                                         method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


def check_live_widgets(page) -> None:
    """Where a notebook shows live seconds or a send box, they must work in the page."""
    seconds = page.locator(".demo-live-seconds-number")
    for i in range(seconds.count()):
        before = seconds.nth(i).inner_text()
        page.wait_for_function(
            "([i, v]) => document.querySelectorAll('.demo-live-seconds-number')[i]"
            ".textContent !== v", arg=[i, before], timeout=3000)
    boxes = page.locator(".demo-send-box textarea")
    if boxes.count():
        boxes.first.click()
        boxes.first.press_sequentially("lab!")
        page.locator(".demo-received", has_text="lab!").first.wait_for(timeout=5000)
