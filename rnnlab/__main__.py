"""`python -m rnnlab` is the `rnnlab` command."""

from rnnlab.cli import main

main()
