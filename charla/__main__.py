"""`python -m charla`: the `charla` command line."""

from charla.cli.root import main

main()
