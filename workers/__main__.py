"""`python -m workers` says plainly that this service does not exist yet."""

import sys

sys.exit("workers is not built yet: issue #3 delivers it.")
