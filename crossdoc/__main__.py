"""`python -m crossdoc` runs the command line."""

from crossdoc.cli import main

main()
