"""What every harness's report says about the run itself: the command, the date, the machine, the binary."""

import datetime
import os
import platform
import shlex
import subprocess
import sys


def command_line(program: str) -> str:
    """The command as a user would type it: the shell entry point and this process's arguments."""
    return program + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def uname() -> str:
    return subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()


def machine_description() -> str:
    """The system, the CPU model, its count and the memory."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
                    break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs{memory}"


def binary_version(binary: str) -> str:
    """What `slipway --version` says, or ? when it says nothing."""
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip() or "?"


def write(path: str, text: str, append: bool = False) -> None:
    """Writes (or appends) a Markdown section."""
    with open(path, "a" if append else "w") as handle:
        handle.write(text)
