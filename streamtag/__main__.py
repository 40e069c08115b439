"""``python -m streamtag``: same as the ``streamtag`` command."""

import sys

from .cli import main

sys.exit(main())
