"""``python -m demo_server.dissect``: see :func:`demo_server.dissect.cli.main`."""

import sys

from .cli import main

sys.exit(main())
