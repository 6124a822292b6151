"""Where a reader's browser finds the demo server: directly, or through Jupyter's proxy.

On a JupyterHub (Binder runs one) the kernel runs on a server: ``http://127.0.0.1:PORT``
names the reader's own machine, where nothing listens. The browser reaches only the
Jupyter server, which forwards ``{prefix}proxy/PORT/...`` to ``localhost:PORT`` with
`jupyter-server-proxy <https://jupyter-server-proxy.readthedocs.io>`_, after Jupyter's own
login and Origin check. JupyterHub tells a single-user server its prefix in
``JUPYTERHUB_SERVICE_PREFIX`` (``/user/ann/``); the kernel inherits it.

``DEMO_SERVER_PROXY`` forces a mode: ``off`` (direct), ``on`` (the hub's prefix, else
``/``), or a prefix such as ``/`` (a JupyterLab of your own with jupyter-server-proxy) or
``/user/ann/``. Unset or ``auto``: through the proxy when ``JUPYTERHUB_SERVICE_PREFIX`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["ENV_VAR", "HUB_PREFIX_VAR", "proxy_prefix", "proxied_path"]

ENV_VAR = "DEMO_SERVER_PROXY"
HUB_PREFIX_VAR = "JUPYTERHUB_SERVICE_PREFIX"


def proxy_prefix(proxy: bool | str | None = None,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """The Jupyter server's base URL path (``/``, ``/user/ann/``) to reach the demo server
    through its proxy, or None to reach it directly.

    ``proxy``: None reads ``DEMO_SERVER_PROXY`` (see the module's text); False is direct;
    True uses the hub's prefix, else ``/``; a string is the prefix itself.
    """
    env = os.environ if environ is None else environ
    hub = env.get(HUB_PREFIX_VAR) or None
    if proxy is None:
        setting = env.get(ENV_VAR, "auto").strip()
        proxy = {"auto": hub, "": hub, "off": False, "on": True}.get(setting.lower(), setting)
        if proxy is None:
            return None
    if proxy is False:
        return None
    if proxy is True:
        proxy = hub or "/"
    if not isinstance(proxy, str) or not proxy.startswith("/") or any(
        c in proxy for c in "?#\\ "
    ):
        raise ValueError(f"a proxy prefix is a URL path such as / or /user/ann/ (or use "
                         f"on, off, auto in {ENV_VAR}), got {proxy!r}")
    return proxy if proxy.endswith("/") else proxy + "/"


def proxied_path(prefix: str, port: int, path: str = "socket.html") -> str:
    """``{prefix}proxy/{port}/{path}``: the demo server's ``/{path}`` through Jupyter."""
    return f"{prefix}proxy/{port}/{path.lstrip('/')}"
