"""The helpers that the Python under bench/ and Tests/Browser/ shares.

    git        running git with a fixed identity; a working repository and the bare one it pushes to
    ports      free loopback ports, waiting for one to listen
    web        HTTP JSON requests to the daemon (status and parsed answer), waiting for deployments
    sse        reading Server-Sent Events streams
    daemon     `slipway serve` as a child process: start, wait until it listens, stop, kill
    processes  tracking child processes and ending them; /proc helpers for step processes
    scratch    temporary scratch folders
    log        one-line progress messages
    report     the parts of a Markdown report that every harness writes (command, date, machine)
    cli        the command-line options of the harnesses that write a Markdown section
    postgres   a throwaway PostgreSQL server (script/test-postgres) for the cases on the PostgreSQL store

A script puts bench/ on sys.path and imports what it needs:

    sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from harness import git, web

Only the Python standard library is used.
"""

import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_SLIPWAY = os.environ.get("SLIPWAY_BIN", os.path.join(ROOT, ".build", "debug", "slipway"))

# The statuses of a deployment that has ended.
FINISHED = frozenset({"succeeded", "failed", "cancelled", "superseded", "interrupted"})


class HarnessError(RuntimeError):
    """The harness could not do what it needed (not a finding about the product)."""
