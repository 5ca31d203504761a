"""``python -m benchmarks``: run every benchmark (see :mod:`benchmarks.run`)."""

import sys

from .run import main

sys.exit(main())
