"""Entry point of the executor process: ``python -m execution_engine.executor FD``."""

import sys

from .remote.server import main

if __name__ == "__main__":
    sys.exit(main())
