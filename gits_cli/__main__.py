"""`python -m gits_cli`: the same as the `gits` command."""

from gits_cli.main import main

main()
