"""Every notebook as people read it before running anything: stored outputs, no kernel.

GitHub and nbviewer show only what a notebook stores. nbconvert's HTML exporter (which
nbviewer uses) skips a widget view whose state the notebook does not store and renders the
next type of the display bundle instead, so a live view must carry a static one: here each
notebook is exported to HTML, opened in Chromium with the network cut (like a page whose
demo server is long gone), and every output that was live must show what the reader saw.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

from .conftest import SHOTS

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_TYPES = ("text/html", "image/png", "image/svg+xml")  # what a widget view falls back to


def notebook_names() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def stored_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.fixture(scope="module")
def exporter() -> HTMLExporter:
    return HTMLExporter(template_name="lab")


@pytest.mark.parametrize("name", notebook_names())
def test_stored_outputs_read_well_without_a_kernel(browser, exporter, name, tmp_path):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    outputs = stored_outputs(notebook)
    views = [o["data"] for o in outputs if WIDGET_VIEW in o.get("data", {})]
    bare = [v["text/plain"] for v in views if not any(t in v for t in STATIC_TYPES)]
    assert bare == [], "widget views whose only fallback is their repr"
    snapshots = sum(o.get("data", {}).get("text/html", "").count('class="demo-snapshot ')
                    for o in outputs)

    html, _ = exporter.from_notebook_node(notebook)
    page_file = tmp_path / f"{Path(name).stem}.html"
    page_file.write_text(html, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    try:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            "file:") else route.abort())  # offline: no CDN, no demo server
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        shown = page.locator(".demo-snapshot")
        assert shown.count() == snapshots
        for i in range(snapshots):
            assert shown.nth(i).is_visible(), f"snapshot {i} is hidden"
        for second in page.locator(".demo-snapshot-second").all_inner_texts():
            assert re.fullmatch(r"\d{1,2}", second.strip()), second
        assert page.locator("iframe").count() == 0, "an iframe shows a dead port here"
        texts = page.locator(".jp-OutputArea-output").all_inner_texts()
        reprs = [t for t in texts for v in views if v["text/plain"] in t]
        assert reprs == [], "widget outputs that show a Python repr instead of the widget"
        assert not [t for t in texts if "Error displaying widget" in t]
    finally:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SHOTS / f"static-{Path(name).stem}.png", full_page=True)
        context.close()
