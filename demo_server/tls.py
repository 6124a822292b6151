"""TLS for the demo server: a throwaway certificate authority, SSL contexts, key logs.

``https://`` and ``wss://`` need a certificate the client trusts. For a lesson on one
machine, :func:`throwaway_ca` makes a certificate authority with ``trustme`` (made for
exactly this: tests and demos), once per process, and :func:`server_context` has it issue
the server's certificate on the fly; :func:`client_context` trusts it, so a
:class:`~demo_server.client.ClientThread` in the same process connects without a warning.
A real certificate is ``certfile`` / ``keyfile`` instead. Browsers do not know the
throwaway authority: they warn once, or trust :func:`ca_file`.

A key log is the file where the TLS library writes each connection's secrets, in the NSS
key log format Wireshark and ``python -m demo_server.dissect --keylog`` read. Python's
``ssl`` writes it to :attr:`ssl.SSLContext.keylog_filename`; both contexts here set it to
``keylog``, else to the ``SSLKEYLOGFILE`` environment variable, as browsers and curl do.
"""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # loaded when used: plain http:// needs neither trustme nor scapy
    import trustme

    from .capture import Capture

__all__ = ["LOCAL_NAMES", "ca_file", "client_context", "keylog_for", "sample_keylog",
           "server_context", "throwaway_ca"]

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")  # what the throwaway certificate is for
_lock = threading.Lock()
_ca: trustme.CA | None = None
_ca_file: Path | None = None

Path_ = str | os.PathLike[str] | None  # a file, or none


def throwaway_ca() -> trustme.CA:
    """This process's certificate authority, made on first use (in memory, never saved)."""
    global _ca
    import trustme  # here: serving plain http:// does not need it

    with _lock:
        if _ca is None:
            _ca = trustme.CA(organization_name="demo_server throwaway CA")
        return _ca


def ca_file() -> Path:
    """The throwaway authority's certificate in a PEM file (``curl --cacert``, a browser's
    trusted authorities); removed when the process ends."""
    global _ca_file
    ca = throwaway_ca()
    with _lock:
        if _ca_file is None:
            folder = Path(tempfile.mkdtemp(prefix="demo-server-ca-"))
            _ca_file = folder / "ca.pem"
            ca.cert_pem.write_to_path(str(_ca_file))
            atexit.register(shutil.rmtree, folder, True)
        return _ca_file


def _keylog(context: ssl.SSLContext, keylog: Path_) -> ssl.SSLContext:
    path = keylog if keylog is not None else os.environ.get("SSLKEYLOGFILE") or None
    if path is not None:
        context.keylog_filename = os.fspath(path)  # appended to, one line per secret
    return context


def server_context(host: str = "127.0.0.1", *, certfile: Path_ = None,
                   keyfile: Path_ = None, keylog: Path_ = None) -> ssl.SSLContext:
    """A server's context: ``certfile`` (and ``keyfile``, unless the key is in it), or a
    certificate for ``host`` and :data:`LOCAL_NAMES` from :func:`throwaway_ca`."""
    if keyfile is not None and certfile is None:
        raise ValueError("keyfile needs a certfile")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the certificate {os.fspath(certfile)}"
                             f"{f' and key {os.fspath(keyfile)}' if keyfile else ''}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from exc
    else:
        names = dict.fromkeys((*LOCAL_NAMES, host) if host not in ("0.0.0.0", "::", "")
                              else LOCAL_NAMES)
        throwaway_ca().issue_cert(*names).configure_cert(context)
    return _keylog(context, keylog)


def client_context(*, keylog: Path_ = None) -> ssl.SSLContext:
    """A client's context: the system's authorities and this process's throwaway one."""
    context = ssl.create_default_context()
    throwaway_ca().configure_trust(context)
    return _keylog(context, keylog)


def sample_keylog() -> Path:
    """The key log of the bundled ``wss://`` sample (``load_sample("tls")``)."""
    return Path(str(resources.files(__package__) / "data" / "sample-tls.keys"))


def keylog_for(cap: Capture, keylog: str | os.PathLike[str]) -> Path:
    """``keylog``, or :func:`sample_keylog` when ``cap`` is the bundled sample (a reader
    who cannot capture): the key log that goes with what was captured."""
    return sample_keylog() if cap.backend == "sample" else Path(keylog)
