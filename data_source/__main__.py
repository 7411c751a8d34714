"""`python -m data_source` says plainly that this service does not exist yet."""

import sys

sys.exit("data_source is not built yet: issue #3 delivers it.")
