import sys

from fleet.cli import main

if __name__ == "__main__":  # spawned benchmark processes import this module too
    sys.exit(main())
