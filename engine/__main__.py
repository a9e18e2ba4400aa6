"""``python -m engine``: see `engine.cli`."""

import sys

from engine.errors import EngineError
from engine.threads import configure_process

if __name__ == "__main__":
    try:  # before anything imports numpy or torch: their thread pools read it when they start
        configure_process("cli")
    except EngineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)

    from engine.cli import main

    sys.exit(main())
