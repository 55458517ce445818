"""`python -m fractalgd.cli` is the command line."""

from fractalgd.cli.app import main

main()
