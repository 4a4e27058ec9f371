"""`python -m fedrollup` is the same as the `fedrollup` command."""
import sys

from fedrollup.cli import main

sys.exit(main())
