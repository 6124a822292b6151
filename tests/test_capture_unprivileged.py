"""Capture as an unprivileged user: through Wireshark's dumpcap, or the bundled samples.

As root, these tests set up dumpcap the way Debian's ``wireshark-common`` does when asked to
let non-superusers capture (owner root, group ``wireshark``, mode 754, file capabilities
cap_net_raw,cap_net_admin+eip), if that is not done yet. Then they run as ``nobody``
(setpriv: no capabilities, so no raw socket), in group ``wireshark`` (dumpcap works) or not
(nothing can capture: the samples). Notebooks 05-07 run under nbval in both modes; the
normal test run covers them as root.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USER, GROUP = "nobody", "wireshark"
USER_IDS = [f"--reuid={USER}", f"--regid={pwd.getpwnam(USER).pw_gid}"]
DUMPCAP = shutil.which("dumpcap")
NOTEBOOKS = ["notebooks/05-capture-handshake.ipynb", "notebooks/06-dissect-frames.ipynb",
             "notebooks/07-polling-vs-push.ipynb"]

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                       reason="runs as root on Linux, to become an unprivileged user"),
    pytest.mark.skipif(not shutil.which("setpriv") or not shutil.which("setcap"),
                       reason="needs setpriv (util-linux) and setcap (libcap2-bin)"),
    pytest.mark.skipif(DUMPCAP is None,
                       reason="needs Wireshark's dumpcap: apt-get install wireshark-common"),
]


@pytest.fixture(scope="module")
def dumpcap_for_group():
    """dumpcap as Debian sets it up for "non-superusers may capture"."""
    try:
        gid = grp.getgrnam(GROUP).gr_gid
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True)
        gid = grp.getgrnam(GROUP).gr_gid
    info = os.stat(DUMPCAP)
    if (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) != (0, gid, 0o754):
        os.chown(DUMPCAP, 0, gid)  # clears the file capabilities: set them below
        os.chmod(DUMPCAP, 0o754)
    caps = subprocess.run(["getcap", DUMPCAP], capture_output=True, text=True).stdout
    if "cap_net_admin,cap_net_raw=eip" not in caps:
        subprocess.run(["setcap", "cap_net_raw,cap_net_admin+eip", DUMPCAP], check=True)


@pytest.fixture
def home():
    """The user's HOME: in the system's temp folder (pytest's home is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="demo-server-home-"))
    user = pwd.getpwnam(USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    yield path
    shutil.rmtree(path)


def interpreter_reachable() -> bool:
    """Whether the user may run this Python (not so when it lives under /root)."""
    probe = ["setpriv", *USER_IDS, "--clear-groups", "--inh-caps=-all",
             "/bin/sh", "-c", 'exec "$0" -c pass', sys.executable]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


def as_user(args: list[str], home: Path, *, in_group: bool) -> subprocess.Popen[str]:
    """Start ``args`` as ``nobody``, with no capabilities; in group wireshark if ``in_group``.

    If this Python is out of the user's reach (a pyenv under /root), the user gets only
    CAP_DAC_READ_SEARCH to read it: that opens no raw socket and runs no dumpcap (754).
    """
    caps = ["--inh-caps=-all"] if interpreter_reachable() else [
        "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search"]
    command = ["setpriv", *USER_IDS,
               f"--groups={GROUP}" if in_group else "--clear-groups", *caps,
               "/bin/sh", "-c", 'exec "$@"', "sh", *args]  # sh: a plain exec, as the user
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)


def finish(process: subprocess.Popen[str], timeout: float) -> str:
    """Wait for ``process``; its stdout, once it exited with 0."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, stdout[-3000:] + stderr[-2000:]
    return stdout


def backend_for(home: Path, *, in_group: bool) -> str:
    """The backend the user's capture picks, or the CaptureUnavailable sentence."""
    code = ("from demo_server.capture import CaptureUnavailable, capture\n"
            "try: print(capture(9).start().stop().backend)\n"
            "except CaptureUnavailable as exc: print(exc)")
    return finish(as_user([sys.executable, "-c", code], home, in_group=in_group), 60).strip()


def test_in_group_wireshark_dumpcap_captures_a_whole_exchange(dumpcap_for_group, home):
    exchange = as_user([sys.executable, str(ROOT / "tests" / "live_exchange.py")], home,
                       in_group=True)
    seen = json.loads(finish(exchange, 120))
    assert "may not open a raw socket on lo (Operation not permitted)" in seen["raw_socket"]
    assert seen["backend"] == "dumpcap" and seen["drops"] == 0 and seen["warnings"] == []
    assert seen["first"] == "S" and seen["upgraded"] and seen["echoed"]
    assert seen["messages"] and seen["closed"] and seen["complete"]


def test_outside_the_group_nothing_captures_and_the_sentence_says_why(dumpcap_for_group,
                                                                      home):
    sentence = backend_for(home, in_group=False)
    assert sentence.startswith("Live capture is not possible: this process may not open a "
                               "raw socket on lo (Operation not permitted), and this user may "
                               f"not run {DUMPCAP} (Permission denied); to capture without root")
    assert "sudo usermod -aG wireshark $USER" in sentence


def test_notebooks_05_to_07_under_nbval_with_dumpcap_and_with_the_sample(dumpcap_for_group,
                                                                         home):
    """Both modes at once, in two HOMEs: the notebooks mostly wait (07's three 10 s runs)."""
    sample_home = home / "sample"
    sample_home.mkdir()
    shutil.chown(sample_home, USER, grp.getgrgid(pwd.getpwnam(USER).pw_gid).gr_name)
    modes = {True: ("dumpcap", home), False: ("Live capture is not possible", sample_home)}
    for in_group, (expected, user_home) in modes.items():
        assert backend_for(user_home, in_group=in_group).startswith(expected)
    runs = [as_user([sys.executable, "-m", "pytest", "-q", *NOTEBOOKS], user_home,
                    in_group=in_group) for in_group, (_, user_home) in modes.items()]
    for run in runs:
        stdout = finish(run, 600)
        assert " passed" in stdout and "failed" not in stdout
