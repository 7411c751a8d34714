"""`python -m queue_manager` says plainly that this service does not exist yet."""

import sys

sys.exit("queue_manager is not built yet: issue #3 delivers it.")
