"""`python -m byoc` runs the command line."""

from byoc.cli import main

main()
