"""Shared set-up of the compatibility tests."""

import os
import tempfile

# The command line caches objects under the user's cache directory by default:
# these tests (and the processes they start) use a private one.
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="ee-compat-cache-"))
