"""`python -m streamrec.streams.cli …` is `streamrec …` (used to start workers as subprocesses)."""

from streamrec.streams.cli import main

main()
