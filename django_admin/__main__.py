"""`python -m django_admin` says plainly that this service does not exist yet."""

import sys

sys.exit("django_admin is not built yet: issue #6 delivers it.")
