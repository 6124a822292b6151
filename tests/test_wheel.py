"""The built wheel, installed (not editable) in a fresh venv, serves its own page."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from .conftest import http_get
from .test_cli import launch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT],
                   check=True, capture_output=True)
    (built,) = out.glob("websocket_intro-*.whl")
    return built


def test_the_wheel_carries_every_static_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("static", "data"):
        for path in (ROOT / "demo_server" / folder).glob("*"):
            assert f"demo_server/{folder}/{path.name}" in names
    assert "demo_server/static/socket.html" in names


def test_the_installed_wheel_serves_the_page(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # Only what serving needs: the wheel itself and websockets, no editable checkout.
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", wheel,
                    f"websockets=={version('websockets')}"], check=True)
    proc, port = launch(python=python, cwd=tmp_path)
    try:
        status, headers, body = http_get(port, "/socket.html")
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert body == (ROOT / "demo_server" / "static" / "socket.html").read_bytes()
        assert http_get(port, "/client.js")[0] == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=5)
    assert proc.returncode == 0
