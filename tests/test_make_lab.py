"""The README's first command, ``make lab``, really starts JupyterLab (as root too)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .test_jupyterlab import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_lab_starts_jupyterlab_on_the_notebooks(tmp_path):
    port = free_port()
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} "
            "--ServerApp.port_retries=0 --IdentityProvider.token=")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), HOME=str(tmp_path))
    lab = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert lab.poll() is None, f"make lab exited {lab.returncode}: {lab.stdout.read()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents",
                                            timeout=2) as reply:
                    listing = json.load(reply)
                break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.5)
        names = {item["name"] for item in listing["content"]}
        assert "01-create-server.ipynb" in names  # it serves notebooks/, the tutorial
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
