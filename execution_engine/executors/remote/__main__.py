"""Entry point of the executor process: ``python -m execution_engine.executors.remote FD``."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
