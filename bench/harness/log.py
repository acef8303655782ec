"""One-line progress messages, flushed at once (the harnesses run for minutes, often behind a pipe)."""

import sys


def out(message: str) -> None:
    print(message, flush=True)


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
