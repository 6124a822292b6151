"""``python -m demo_server``: the same as ``demo-server``."""

import sys

from .cli import main

sys.exit(main())
