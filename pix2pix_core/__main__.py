"""`python -m pix2pix_core ...` (also works under torchrun: `torchrun -m pix2pix_core train ...`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
