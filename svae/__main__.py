"""`python -m svae` runs the command line (also what torchrun launches)."""
import sys

from .cli import main

sys.exit(main())
