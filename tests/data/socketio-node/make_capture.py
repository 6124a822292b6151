"""Record socketio-node.pcap: the article's Node app and the official socket.io client.

Run from a folder with ``npm install express@5 socket.io@4.8 socket.io-client@4.8`` done,
as root (live capture), with this repository's venv:
``.venv/bin/python tests/data/socketio-node/make_capture.py DIR_WITH_NODE_MODULES``.
The capture is a recording of real traffic, not reproducible byte for byte (keys, sids and
times change); the tests pin what it must contain, not its bytes.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from demo_server.capture import Capture

here = Path(__file__).parent
work = Path(sys.argv[1])
for script in ("index.js", "client.js"):
    shutil.copy(here / script, work / script)
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
env = dict(os.environ, PORT=str(port))
server = subprocess.Popen(["node", "index.js"], cwd=work, env=env, stdout=subprocess.PIPE,
                          text=True)
try:
    assert server.stdout is not None and server.stdout.readline().strip() == "listening"
    with Capture(port) as capture:
        subprocess.run(["node", "client.js"], cwd=work, env=env, check=True, timeout=20)
        time.sleep(0.5)  # the server's last packets
finally:
    server.terminate()
    server.wait()
capture.save(here / "socketio-node.pcap")
(here / "port.txt").write_text(f"{port}\n")
print(f"{len(capture)} packets on port {port}")
