"""``python -m gan_course.pretrained NAME``: reproduce (or ``--export-only``) a shipped longer run."""

import sys

from . import main

sys.exit(main())
