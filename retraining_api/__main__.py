"""`python -m retraining_api` says plainly that this service does not exist yet."""

import sys

sys.exit("retraining_api is not built yet: issue #5 delivers it.")
