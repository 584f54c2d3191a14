"""`python -m streams.cli …` is `streamrec …` (used to start workers as subprocesses)."""

from streams.cli import main

main()
