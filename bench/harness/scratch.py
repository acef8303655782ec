"""Temporary scratch folders: one per run, removed at the end unless it is kept for a post-mortem."""

import os
import shutil
import tempfile


class Scratch:
    def __init__(self, name: str, parent: str | None = "/tmp"):
        self.root = tempfile.mkdtemp(prefix=f"slipway-{name}-", dir=parent)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def mkdir(self, *parts: str) -> str:
        path = self.path(*parts)
        os.makedirs(path, exist_ok=True)
        return path

    def finish(self, keep: bool, note: str, say) -> None:
        """Removes the folder, or, with keep, leaves it and says so with `say(note)`."""
        if keep:
            say(note)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
