"""`python -m ground_truth_collector` says plainly that this service does not exist yet."""

import sys

sys.exit("ground_truth_collector is not built yet: issue #4 delivers it.")
