"""``python -m pinnsiren`` = the ``pinnsiren`` command."""

import sys

from .cli import main

sys.exit(main())
