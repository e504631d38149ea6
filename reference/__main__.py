"""``python -m reference helmholtz|wave|poisson ...``."""

import sys

from .cli import main

sys.exit(main())
