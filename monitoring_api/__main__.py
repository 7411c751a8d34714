"""`python -m monitoring_api` says plainly that this service does not exist yet."""

import sys

sys.exit("monitoring_api is not built yet: issue #4 delivers it.")
