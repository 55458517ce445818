"""`python -m fractalgd` is the command line."""

from fractalgd.cli import main

main()
