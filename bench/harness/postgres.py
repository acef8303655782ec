"""A throwaway PostgreSQL server for the harnesses (script/test-postgres), in a folder of its own."""

import glob
import os
import shutil
import subprocess
import tempfile

from harness import ROOT, HarnessError

SCRIPT = os.path.join(ROOT, "script", "test-postgres")


class PostgresServer:
    """Started when made; `stop` and `start` take it away and bring it back on the same port; `remove` ends it.
    Usable as a context manager, which removes it on the way out."""

    def __init__(self):
        # Not under a harness's own temporary folder: the server runs as an unprivileged user, which must reach its
        # folder, and mkdtemp's folders are their owner's alone.
        self.parent = tempfile.mkdtemp(prefix="slipway-pg-")
        os.chmod(self.parent, 0o755)
        self.directory = os.path.join(self.parent, "server")
        self.url = self.start()
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or [shutil.which("psql")]
        self.psql = candidates[-1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()

    def start(self):
        """Starts it (again); its URL."""
        result = subprocess.run([SCRIPT, "start", self.directory], capture_output=True, text=True)
        if result.returncode != 0:
            raise HarnessError("script/test-postgres start failed: %s" % (result.stderr or result.stdout))
        return result.stdout.strip()

    def stop(self):
        subprocess.run([SCRIPT, "stop", self.directory], capture_output=True, text=True)

    def remove(self):
        subprocess.run([SCRIPT, "remove", self.directory], capture_output=True, text=True)
        shutil.rmtree(self.parent, ignore_errors=True)

    def database_url(self, name):
        """The URL of database `name` on this server."""
        return self.url.rsplit("/", 1)[0] + "/" + name

    def fresh_database(self, name):
        """Creates database `name`, empty (dropping one of that name first); its URL."""
        for statement in ("DROP DATABASE IF EXISTS %s" % name, "CREATE DATABASE %s" % name):
            result = subprocess.run([self.psql, self.url, "-X", "-q", "-c", statement], capture_output=True, text=True)
            if result.returncode != 0:
                raise HarnessError("%s: %s" % (statement, result.stderr.strip()))
        return self.database_url(name)
