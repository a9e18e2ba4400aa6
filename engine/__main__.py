"""``python -m engine``: see `engine.cli`."""

import os
import sys

# torch's OpenMP threads spin while waiting; on a busy 2-core machine that stalls the many small
# kernels of our solvers. Passive waiting costs nothing measurable when the machine is quiet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
