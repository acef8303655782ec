"""Running git with a fixed identity, and the repositories the harnesses make."""

import os
import subprocess

from harness import HarnessError

ZERO_SHA = "0" * 40


class GitError(HarnessError):
    """A git command that failed; the message names it and carries git's stderr."""

    def __init__(self, args, returncode: int, stderr: str):
        self.cmd = ["git", *args]
        self.returncode = returncode
        self.stderr = stderr
        super().__init__("git %s failed: %s" % (" ".join(args), stderr.strip()))


def identity_env(name: str, email: str, home: str | None = None, **extra: str) -> dict:
    """This process's environment without its GIT_* variables, with a fixed author and committer, no system
    configuration and no prompts. With home, HOME and the global configuration point into it (so nothing of the
    user's ~/.gitconfig applies). extra: more variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email,
               GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    if home is not None:
        env.update(HOME=home, GIT_CONFIG_GLOBAL=os.path.join(home, ".gitconfig"))
    env.update(extra)
    return env


def run(*args: str, cwd: str | None = None, env: dict | None = None, timeout: float | None = None,
        **kwargs) -> subprocess.CompletedProcess:
    """`git ARGS` with its output captured as text, whatever its exit status."""
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def git(*args: str, cwd: str | None = None, env: dict | None = None, timeout: float | None = None) -> str:
    """`git ARGS`; its stdout without the trailing newline. Raises GitError when it fails."""
    result = run(*args, cwd=cwd, env=env, timeout=timeout)
    if result.returncode != 0:
        raise GitError(args, result.returncode, result.stderr)
    return result.stdout.strip()


class WorkRepo:
    """A working repository on branch main, and the bare repository it pushes to (its remote `origin`)."""

    def __init__(self, work: str, bare: str, env: dict):
        self.work = work
        self.bare = bare
        self.env = env
        git("init", "-q", "--bare", "-b", "main", bare, env=env)
        os.makedirs(work, exist_ok=True)
        git("init", "-q", "-b", "main", work, env=env)
        self.git("remote", "add", "origin", bare)

    def git(self, *args: str, timeout: float | None = None) -> str:
        return git(*args, cwd=self.work, env=self.env, timeout=timeout)

    def write(self, path: str, text: str, mode: int | None = None) -> str:
        """Writes a file of the working tree (making its folders); returns its full path."""
        full = os.path.join(self.work, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(full, mode)
        return full

    def commit(self, message: str, *paths: str) -> str:
        """Commits the given paths (every change when none is given); returns the new commit's sha."""
        self.git("add", *(paths or ("-A",)))
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def branch_head(self, branch: str = "main") -> str | None:
        """The commit the bare repository's branch points at, or None when it has no such branch."""
        result = run("--git-dir", self.bare, "rev-parse", "--verify", "-q", "refs/heads/" + branch, env=self.env)
        return result.stdout.strip() if result.returncode == 0 else None

    def push(self, refspec: str = "main") -> None:
        self.git("push", "-q", "origin", refspec)
