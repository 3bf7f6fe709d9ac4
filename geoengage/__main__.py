"""``python -m geoengage``: the same as the ``geoengage`` command."""

import sys

from .cli import main

sys.exit(main())
