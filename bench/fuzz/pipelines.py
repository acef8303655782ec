"""Pipeline loader fuzzing: mutated pipeline files through `slipway validate`.

Every file must either load (no output line names it) or get at least one `FILE:LINE:COLUMN: message` line
with LINE and COLUMN positive integers (and inside the file), while `slipway validate` exits 0 or 1 and
finishes in time. Files go through in batches (one folder, one `slipway validate DIR` run each); when a
batch crashes or hangs, its files are run one at a time to find which ones did it.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

# The example from SPEC.md ("Pipeline files"), as written there, and a few variants. All of them load when
# HELLO_SECRET is set (it is, for the validate runs).
SPEC_EXAMPLE = """\
repository: /srv/git/hello.git   # required: a local path, file://, https://, ssh:// or git:// URL
branch: main                     # default: main
deploy_to: /srv/hello            # default: <state>/apps/<app>
keep_releases: 5                 # successful releases kept on disk, at least 1; default 5
poll: 60s                        # optional: how often to check the branch with no notice; absent means never
paths: ["services/hello/**"]     # optional: deploy only when a changed file matches one of these globs
webhook_secret: ${HELLO_SECRET}  # optional: this app's webhook secret; ${NAME} reads the daemon's environment
env:                             # extra environment for every step; values may use ${NAME}
  APP_ENV: production
build:                           # phases, in this order: build, test, migrate, then activate after the switch
  - make build                   # a step is either a string...
test:
  - name: unit                   # ...or a mapping with name, run, and optionally timeout and env
    run: make test
    timeout: 5m                  # default 30m; durations are written like 90s, 5m, 1h, 1m30s
migrate:
  - ./bin/migrate
activate:
  - ./bin/restart
health:                          # optional: checked after activate
  http: http://127.0.0.1:9000/up # either http (it passes on any 2xx) or command (it passes on exit 0)
  timeout: 30s                   # how long to keep trying in total; default 30s
  interval: 1s                   # how long to wait between tries; default 1s
rollback:                        # optional: run in the target release after the switch when rolling back to it
  - ./bin/migrate --to-current
"""

SEEDS = {
    "spec": SPEC_EXAMPLE,
    "minimal": "repository: /srv/git/minimal.git\nbuild: [\"true\"]\n",
    "steps": """\
repository: https://git.example.com/team/app.git
branch: release/2026-11
keep_releases: 1
poll: 1m30s
env:
  GREETING: "hello, ${HELLO_SECRET}"
  EMPTY: ""
  NUMBER: 42
build:
  - name: compile
    run: |
      set -e
      make -j2 all
    timeout: 1h
    env:
      CC: clang
  - "echo built"
test:
  - name: lint
    run: make lint
    timeout: 90s
health:
  command: ./bin/check
  timeout: 10s
  interval: 500ms
""",
    "flow": "{repository: 'ssh://git@example.com/x.git', branch: main, build: [make, 'make test'], "
            "activate: [{name: restart, run: ./restart, timeout: 30s}], paths: ['a/**', '*.md']}\n",
    "file-url": """\
# A comment line first.
repository: file:///srv/git/other.git/
deploy_to: ./relative/deploy
webhook_secret: plain-secret
migrate: []
activate:
  - >-
    ./bin/restart
    --graceful
rollback: ~
""",
}

SCALAR_REPLACEMENTS = [
    "[a, b]", "{a: 1}", "[]", "{}", "~", "null", "true", "false", "yes", "no", "on", "0", "-1", "1.5", "1e400",
    "-.inf", ".nan", "0x1F", "0o17", "1_000", "99999999999999999999999999", "''", '""', "' '", "\"\\0\"",
    "\"\\x00\\uFFFF\\U0010FFFF\"", "\"\\ud800\"", "!!binary aGVsbG8=", "!!str 5", "!!int x", "!!float abc",
    "!!timestamp 2001-12-14", "!foo bar", "!!python/object:os.system ls", "!!set {a, b}", "!!omap [a: 1]",
    "&x value", "*undefined", "|\n  block\n  text", ">\n  folded", "\"${UNSET_FUZZ_VAR}\"", "${", "${}",
    "${1BAD}", "$${LITERAL}", "\"${HELLO_SECRET\"", "-5m", "5x", "0s", "1m30", "1h1h", "9999999999999h",
    "1.5s", "5 m", "ms", "100000000000000000000ms", "\"\"\"", "'unterminated", "\"unterminated", "[unclosed",
    "{unclosed: 1", "- - -", "? complex", ": lone", "@reserved", "`backtick", "%percent", "|", ">", "#", "-",
]

UNKNOWN_KEYS = [
    "biuld", "Build", "BUILD", "tests", "deploy-to", "deployTo", "keep_release", "pol", "path", "webhook",
    "environment", "healthcheck", "roll_back", "steps", "script", "run", "name", "timeout", "<<", "?", "-",
    "\"quoted key\"", "'single'", "1", "true", "~", "[a]", "{a: 1}", "key with spaces", "ключ", "🚀",
    "k" * 300, "repository ", " repository", "repository\t",
]

BYTE_POOL = [
    b"\x00", b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\t", b"\r",
    b"\r\n", b"\n", b":", b": ", b"-", b"- ", b"[", b"]", b"{", b"}", b",", b"&", b"*", b"!", b"%", b"@", b"`",
    b"\"", b"'", b"#", b"|", b">", b"?", b"\\", b"\xef\xbb\xbf", b"\xe2\x80\xa8", b"\xc2\x85", b"\x1b", b"\x7f",
    b"\x0b", b"\x0c", b"${", b"}", b"$", b"---\n", b"...\n", b"%YAML 1.1\n", b"\xf0\x9f\x9a\x80", b"  ", b" ",
]

# Mutations that make files big enough to take long on purpose run one file at a time (see run_pipeline_fuzz).
SOLO_MUTATIONS = {"alias_string_bomb"}


@dataclass
class Case:
    number: int
    name: str                 # f00001: the app name, and the file name without .yml
    seed: str
    mutations: list[str]
    data: bytes
    solo: bool = False


@dataclass
class Outcome:
    loaded: int = 0
    rejected: int = 0
    defects: list[dict] = field(default_factory=list)
    batches: int = 0
    solo_runs: int = 0
    reruns: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")
    messages: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------
# Mutations: each takes the file's bytes and a Random and returns new bytes.


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


def m_delete_line(data, rng):
    lines = _lines(data)
    if len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    return _join(lines)


def m_duplicate_line(data, rng):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return _join(lines)


def m_swap_lines(data, rng):
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return _join(lines)


def m_indent(data, rng):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines[i] = b" " * rng.choice([1, 2, 3, 4, 8, 17]) + lines[i]
    else:
        lines[i] = lines[i][rng.choice([1, 2, 4]):] if lines[i].startswith(b" ") else lines[i].lstrip()
    return _join(lines)


def m_tabs(data, rng):
    lines = _lines(data)
    i = rng.randrange(len(lines))
    choice = rng.random()
    if choice < 0.4:
        stripped = lines[i].lstrip(b" ")
        lines[i] = b"\t" * max(1, (len(lines[i]) - len(stripped)) // 2) + stripped
    elif choice < 0.7:
        lines[i] = lines[i].replace(b": ", b":\t", 1)
    else:
        lines[i] = b"\t" + lines[i]
    return _join(lines)


def m_insert_bytes(data, rng):
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        chunk = rng.choice(BYTE_POOL) if rng.random() < 0.8 else bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        out[rng.randrange(len(out) + 1):0] = chunk
    return bytes(out)


def m_flip_byte(data, rng):
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def m_truncate(data, rng):
    return data[: rng.randrange(len(data) + 1)]


_KEY_VALUE = re.compile(rb"^(\s*(?:- )?[A-Za-z_][A-Za-z0-9_]*:)[ \t]*(.*)$")


def m_replace_scalar(data, rng):
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if _KEY_VALUE.match(line)]
    if not candidates:
        return data
    i = rng.choice(candidates)
    key = _KEY_VALUE.match(lines[i]).group(1)
    lines[i] = key + b" " + rng.choice(SCALAR_REPLACEMENTS).encode()
    return _join(lines)


def m_scalar_to_block(data, rng):
    """A scalar value becomes a block list or mapping on the following lines."""
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if _KEY_VALUE.match(line) and _KEY_VALUE.match(line).group(2)]
    if not candidates:
        return data
    i = rng.choice(candidates)
    match = _KEY_VALUE.match(lines[i])
    indent = len(match.group(1)) - len(match.group(1).lstrip()) + 2
    pad = b" " * indent
    block = [pad + b"- " + match.group(2), pad + b"- second"] if rng.random() < 0.5 else [pad + b"inner: " + match.group(2), pad + b"other: 1"]
    lines[i: i + 1] = [match.group(1)] + block
    return _join(lines)


def m_huge_value(data, rng):
    size = rng.choice([10_000, 100_000, 500_000, 1_100_000])
    filler = rng.choice([b"x", b"ab", b"\xc3\xa9", b" ", b"${A}", b"\\", b"#"])
    value = (filler * (size // len(filler) + 1))[:size]
    lines = _lines(data)
    candidates = [i for i, line in enumerate(lines) if _KEY_VALUE.match(line)]
    if not candidates:
        return data + b"\nhuge: " + value
    i = rng.choice(candidates)
    key = _KEY_VALUE.match(lines[i]).group(1)
    quote = rng.choice([b"", b"\"", b"'"])
    lines[i] = key + b" " + quote + value + quote
    return _join(lines)


def m_many_lines(data, rng):
    count = rng.choice([1_000, 20_000, 60_000])
    step = rng.choice([b"  - \"true\"", b"  - name: s\n    run: x", b"  -", b"  - ~", b"  - [x]"])
    return data + b"\nactivate:\n" + b"\n".join([step] * count) + b"\n"


def m_deep_nesting(data, rng):
    depth = rng.choice([50, 500, 5_000, 50_000, 100_000])
    style = rng.choice(["flow_list", "flow_map", "block_map", "block_list", "mixed"])
    if style == "flow_list":
        value = b"[" * depth + b"x" + b"]" * depth
    elif style == "flow_map":
        value = b"{a: " * depth + b"x" + b"}" * depth
    elif style == "mixed":
        value = b"[{a: " * (depth // 2) + b"x" + b"}]" * (depth // 2)
    else:
        depth = min(depth, 3_000)  # keeps the file under the loader's 1 MiB cap more often than not
        parts = []
        for level in range(depth):
            parts.append(b" " * (level + 1) + (b"k:" if style == "block_map" else b"- "))
        value = b"\n" + b"\n".join(parts) + b" x"
    key = rng.choice([b"build", b"env", b"health", b"paths", b"test", b"unknown_deep", b"repository"])
    return data + b"\n" + key + b": " + value + b"\n"


# Small documents with anchors and aliases, by kind; "laughs" (the billion laughs) is made by billion_laughs.
ANCHORS = {
    "undefined": b"activate: *nowhere\n",
    "recursive": b"activate: &loop [*loop]\n",
    "alias_key": b"x: &k build\n*k : [\"true\"]\n",
    "laughs": None,
    "merge": b"health: &h {command: ./check, timeout: 5s}\ntest:\n  - <<: *h\n    run: make\n",
    "anchor_redefined": b"env: {A: &a one, B: &a two, C: *a}\n",
    "alias_step": b"test: [&s {name: t, run: make}, *s, *s]\n",
}


def billion_laughs(levels: int) -> bytes:
    """The classic billion laughs, as nested lists of lists: each of `levels` levels aliases the one below 9 times."""
    parts = [b"build: &l0 [\"true\",\"true\",\"true\",\"true\",\"true\",\"true\",\"true\",\"true\",\"true\"]"]
    keys = [b"test", b"migrate", b"activate", b"rollback", b"paths", b"x1", b"x2", b"x3", b"x4"]
    for level in range(1, levels):
        parts.append(keys[level - 1] + b": &l%d [" % level + b",".join([b"*l%d" % (level - 1)] * 9) + b"]")
    return b"\n".join(parts) + b"\n"


def m_anchors(data, rng):
    kind = rng.choice(["undefined", "recursive", "alias_key", "laughs", "merge", "anchor_redefined", "alias_step"])
    extra = ANCHORS[kind] if kind != "laughs" else billion_laughs(rng.randint(3, 9))
    lines = [line for line in _lines(data) if not re.match(rb"^(build|test|migrate|activate|rollback|paths|env|health):", line)]
    return _join(lines) + b"\n" + extra


def m_alias_string_bomb(data, rng):
    """One long anchored string, aliased as many steps: little text, much work for whatever walks the values."""
    length = rng.choice([1_000, 10_000, 100_000])
    count = rng.choice([100, 1_000, 5_000])
    lines = [line for line in _lines(data) if not re.match(rb"^(build|env):", line)]
    return (_join(lines) + b"\nenv:\n  BIG: &big \"" + b"t" * length + b"\"\nbuild:\n" + b"  - *big\n" * count)


def m_unknown_key(data, rng):
    lines = _lines(data)
    key = rng.choice(UNKNOWN_KEYS).encode()
    indent = rng.choice([b"", b"", b"  ", b"    "])
    lines.insert(rng.randrange(len(lines) + 1), indent + key + b": " + rng.choice([b"1", b"x", b"[a]", b"{}", b""]))
    return _join(lines)


def m_duplicate_key(data, rng):
    key = rng.choice([b"repository", b"build", b"branch", b"env", b"health", b"keep_releases"])
    return data + b"\n" + key + b": /dup\n"


def m_line_endings(data, rng):
    choice = rng.choice(["crlf", "cr", "nel", "ls", "mixed"])
    if choice == "crlf":
        return data.replace(b"\n", b"\r\n")
    if choice == "cr":
        return data.replace(b"\n", b"\r")
    if choice == "nel":
        return data.replace(b"\n", b"\xc2\x85")
    if choice == "ls":
        return data.replace(b"\n", b"\xe2\x80\xa8")
    return b"".join(part + rng.choice([b"\n", b"\r\n", b"\r"]) for part in data.split(b"\n"))


def m_documents(data, rng):
    choice = rng.choice(["directive", "two_docs", "end_marker", "tag_directive", "bom", "empty_doc", "utf16"])
    if choice == "directive":
        return b"%YAML 1.2\n---\n" + data
    if choice == "two_docs":
        return data + b"\n---\nrepository: /second\n"
    if choice == "end_marker":
        return data + b"\n...\n"
    if choice == "tag_directive":
        return b"%TAG !e! tag:example.com,2000:\n---\n" + data.replace(b"branch:", b"branch: !e!thing", 1)
    if choice == "bom":
        return b"\xef\xbb\xbf" + data
    if choice == "utf16":
        return data.decode("utf-8", "replace").encode("utf-16")
    return b"---\n...\n"


def m_whole_file(data, rng):
    return rng.choice([
        b"", b" ", b"\n\n\n", b"# only a comment\n", b"~\n", b"null\n", b"[]\n", b"{}\n", b"- a\n- b\n",
        b"\"just a string\"\n", b"42\n", b"---\n", b"...\n", b"\x00", b"\xff\xfe\x00\x00", b":\n", b"? \n",
        b"repository:\n", b"repository: \n", b"repository: ''\n", b"repository: [/x]\n", b"&a\n", b"*a\n",
        b"!!map {}\n", b"repository: /x\nbuild: [\"true\"]\n" * 2,
    ])


def m_values(data, rng):
    """Plausible-looking but wrong values for specific keys."""
    key, values = rng.choice([
        (b"keep_releases", [b"0", b"-1", b"1.0", b"5s", b"'5'", b"9223372036854775808", b"1e3", b"[5]", b"null"]),
        (b"poll", [b"0s", b"-60s", b"60", b"60 s", b"1d", b"1w", b"forever", b"60S", b"1h-1m", b"999999999999h"]),
        (b"branch", [b"main..x", b"-main", b"a b", b"/", b"", b"refs/heads/main", b"ma~in", b"@", b"x.lock", b"\"\\n\""]),
        (b"repository", [b"ftp://x/y", b"http://", b"file://", b"relative/path", b" ", b"git@host:x.git", b"https://[::1", b"\"\\t\""]),
        (b"deploy_to", [b"''", b"/", b"~", b"[a]", b"\"\\0\""]),
        (b"paths", [b"\"[\"", b"[\"**/[\"]", b"[1, 2]", b"[[a]]", b"[\"\"]", b"\"a/**\""]),
        (b"webhook_secret", [b"''", b"${NOPE_FUZZ}", b"[s]", b"${HELLO_SECRET}${HELLO_SECRET}"]),
        (b"health", [b"{http: not-a-url}", b"{http: x, command: y}", b"{}", b"{timeout: 1s}", b"{http: 'http://[::1'}", b"{command: ''}", b"{interval: 0s, command: x}"]),
        (b"env", [b"{1A: x}", b"{A-B: x}", b"{SLIPWAY_APP: x}", b"{A: [x]}", b"{A: {b: c}}", b"{'': x}", b"{A: ${NOPE_FUZZ}}", b"[A]"]),
        (b"test", [b"[{run: ''}]", b"[{name: x}]", b"[{run: x, timeout: 0s}]", b"[{run: x, bogus: 1}]", b"[{run: x, env: [a]}]", b"['']", b"[[]]", b"[~]"]),
    ])
    lines = [line for line in _lines(data) if not line.startswith(key + b":")]
    return _join(lines) + b"\n" + key + b": " + rng.choice(values) + b"\n"


def m_crossover(data, rng):
    other = rng.choice(list(SEEDS.values())).encode()
    a, b = _lines(data), _lines(other)
    cut_a, cut_b = rng.randrange(len(a) + 1), rng.randrange(len(b) + 1)
    return _join(a[:cut_a] + b[cut_b:])


MUTATIONS = {
    "delete_line": (m_delete_line, 10), "duplicate_line": (m_duplicate_line, 8), "swap_lines": (m_swap_lines, 8),
    "indent": (m_indent, 10), "tabs": (m_tabs, 6), "insert_bytes": (m_insert_bytes, 10), "flip_byte": (m_flip_byte, 6),
    "truncate": (m_truncate, 6), "replace_scalar": (m_replace_scalar, 14), "scalar_to_block": (m_scalar_to_block, 5),
    "huge_value": (m_huge_value, 1.5), "many_lines": (m_many_lines, 1), "deep_nesting": (m_deep_nesting, 2.5),
    "anchors": (m_anchors, 4), "alias_string_bomb": (m_alias_string_bomb, 0.15), "unknown_key": (m_unknown_key, 6),
    "duplicate_key": (m_duplicate_key, 3), "line_endings": (m_line_endings, 3), "documents": (m_documents, 3),
    "whole_file": (m_whole_file, 1.5), "values": (m_values, 12), "crossover": (m_crossover, 3),
}


# Fixed files that every run includes (right after the seeds), whatever the seed and the count: known
# hazards, so that even the short form notices when one of them regresses.
HAZARDS = {
    "multi-line value in a message (block scalar)": b"repository: /srv/git/x.git\nbuild: |\n  block\n  text\n",
    "multi-line value in a message (escaped newline)": b"repository: /srv/git/x.git\nbranch: \"a\\nb\"\nbuild: [\"true\"]\n",
    "alias string bomb (100 KB anchor x 2000 aliases, 118 KB file)":
        b"repository: /srv/git/x.git\nenv:\n  BIG: &big \"" + b"t" * 100_000 + b"\"\nbuild:\n" + b"  - *big\n" * 2000,
    "billion laughs (nested lists, 9 levels)": b"",  # filled in below, with billion_laughs
    "flow nesting 100000 deep": b"repository: /srv/git/x.git\nbuild: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "NUL byte": b"repository: /srv/git/x.git\nbuild: [\"tr\x00ue\"]\n",
    "invalid UTF-8": b"repository: /srv/git/x\xff\xfe.git\nbuild: [\"true\"]\n",
    "undefined alias": b"repository: /srv/git/x.git\nbuild: *nothing\n",
    "recursive alias": b"repository: /srv/git/x.git\nbuild: &a [*a]\n",
}
HAZARDS["billion laughs (nested lists, 9 levels)"] = b"repository: /srv/git/x.git\n" + billion_laughs(9)


def generate_cases(count: int, rng: random.Random) -> list[Case]:
    names = list(MUTATIONS)
    weights = [MUTATIONS[name][1] for name in names]
    seed_names = list(SEEDS)
    hazards = list(HAZARDS.items())
    cases = []
    for number in range(1, count + 1):
        if len(seed_names) < number <= len(seed_names) + len(hazards):
            title, data = hazards[number - len(seed_names) - 1]
            cases.append(Case(number, f"f{number:05d}", "hazard", [f"hazard: {title}"], data,
                              solo=b"&big" in data))
            continue
        seed = seed_names[(number - 1) % len(seed_names)] if number <= len(seed_names) else rng.choice(seed_names)
        data = SEEDS[seed].encode()
        applied: list[str] = []
        if number > len(seed_names):  # the first few files are the seeds themselves, as a sanity check
            for _ in range(1 + min(3, int(rng.expovariate(1.2)))):
                name = rng.choices(names, weights)[0]
                data = MUTATIONS[name][0](data, rng)
                applied.append(name)
        cases.append(Case(number, f"f{number:05d}", seed, applied, data, solo=bool(SOLO_MUTATIONS & set(applied))))
    return cases


# ----------------------------------------------------------------------------------------------------------
# Running `slipway validate` and judging its output


LINE = re.compile(r"^(?P<file>.+?):(?P<line>-?\d+):(?P<column>-?\d+): (?P<message>.+)$")


def run_validate(binary: str, paths: list[str], timeout: float, env: dict) -> tuple[int | None, str, str, float]:
    """Runs `slipway validate PATH...` in its own process group; returns (exit status or None on a timeout,
    stdout, stderr, seconds). A negative status means a signal ended it."""
    started = time.monotonic()
    process = subprocess.Popen([binary, "validate", *paths], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
        status: int | None = process.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = process.communicate()
        status = None
    return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - started


def generous_extent(data: bytes) -> tuple[int, int]:
    """The most lines and the longest line the file could be said to have: lines counting every kind of line
    break YAML knows (LF, CR, NEL, LS, PS), columns in bytes of the longest line split at LF only."""
    lines = re.split(rb"\r\n|\n|\r|\xc2\x85|\xe2\x80\xa8|\xe2\x80\xa9", data)
    return len(lines) + 1, max((len(part) for part in data.split(b"\n")), default=0) + 2


def judge_output(cases: list[Case], paths: dict[str, Case], status: int | None, stdout: str,
                 outcome: Outcome, folder_mode: bool) -> list[Case]:
    """Sorts a finished run's files into loaded / rejected / defects. Returns the cases that must be rerun alone
    (when the run as a whole crashed or hung, nothing in it can be trusted)."""
    if status is None or status not in (0, 1):
        return cases
    lines_for: dict[str, list[tuple[int, int, str]]] = {case.name: [] for case in cases}
    strays: dict[str, list[str]] = {}
    previous: tuple[Case | None, str] = (None, "")
    for raw in stdout.removesuffix("\n").split("\n") if stdout else []:
        match = LINE.match(raw)
        case = paths.get(match.group("file")) if match else None
        if case is None:
            # Each error is one line; a message with a newline in it leaves a continuation line without a
            # position, which belongs to the error line before it.
            owner = previous[0] or next((c for path, c in paths.items() if raw.startswith(path)), None)
            strays.setdefault(owner.name if owner else "?", []).append(previous[1] + "⏎" + raw)
            continue
        previous = (case, raw)
        lines_for[case.name].append((int(match.group("line")), int(match.group("column")), match.group("message")))
    by_name = {case.name: case for case in cases}
    for name, lines in strays.items():
        record_defect(outcome, by_name.get(name), "an error message that spans lines (a line without FILE:LINE:COLUMN)",
                      f"{len(lines)} continuation line(s), e.g. {lines[0][:300]!r}")
    any_error = False
    for name, found in lines_for.items():
        case = by_name[name]
        if name in strays:
            any_error = True
            continue  # already a defect
        if not found:
            outcome.loaded += 1
            continue
        any_error = True
        if not case.mutations:
            record_defect(outcome, case, "a valid file (a seed, unmutated) was rejected", f"{found[0]}")
            continue
        max_line, max_column = generous_extent(case.data)
        bad = [f for f in found if f[0] < 1 or f[1] < 1]
        outside = [f for f in found if f[0] > max_line or f[1] > max_column]
        if bad:
            record_defect(outcome, case, "a LINE or COLUMN that is not a positive integer", f"{bad[0]}")
        elif outside:
            record_defect(outcome, case, "a position outside the file",
                          f"{outside[0][0]}:{outside[0][1]} (the file has at most {max_line} lines of at most {max_column} bytes): {outside[0][2][:200]}")
        else:
            outcome.rejected += 1
            for _, _, message in found:
                key = re.sub(r"'[^']*'|\d+", "…", message)[:70]
                outcome.messages[key] = outcome.messages.get(key, 0) + 1
    if status == 0 and any_error:
        record_defect(outcome, cases[0] if len(cases) == 1 else None, "exit status 0 with error lines", stdout[:300])
    if status == 1 and not any_error and not strays:
        record_defect(outcome, cases[0] if len(cases) == 1 else None,
                      "exit status 1 with no error line (a file was rejected without FILE:LINE:COLUMN)", f"files: {[c.name for c in cases][:5]}")
    return []


def record_defect(outcome: Outcome, case: Case | None, kind: str, detail: str) -> None:
    outcome.defects.append({
        "kind": kind, "detail": detail,
        "case": case.name if case else None,
        "seed": case.seed if case else None,
        "mutations": case.mutations if case else None,
        "size": len(case.data) if case else None,
    })


def run_pipeline_fuzz(binary: str, count: int, seed: int, workdir: str, batch_size: int = 500,
                      batch_timeout: float = 120.0, file_timeout: float = 15.0, log=print) -> Outcome:
    rng = random.Random(seed)
    cases = generate_cases(count, rng)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8",
           "HELLO_SECRET": "fuzz-secret"}
    outcome = Outcome()
    started = time.monotonic()
    defects_dir = os.path.join(workdir, "defects")

    def run_alone(case: Case) -> None:
        folder = os.path.join(workdir, "solo")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        path = os.path.join(folder, case.name + ".yml")
        with open(path, "wb") as handle:
            handle.write(case.data)
        status, out, err, seconds = run_validate(binary, [path], file_timeout, env)
        outcome.reruns += 1
        if seconds > outcome.slowest[0]:
            outcome.slowest = (seconds, case.name)
        if status is None:
            record_defect(outcome, case, f"a hang: validate did not finish within {file_timeout:g}s", f"{len(case.data)} bytes")
        elif status < 0:
            record_defect(outcome, case, f"a crash: validate was killed by signal {-status}", (err or out)[-300:])
        elif status not in (0, 1):
            record_defect(outcome, case, f"exit status {status}", (err or out)[-300:])
        else:
            judge_output([case], {path: case}, status, out, outcome, folder_mode=False)
            return
        os.makedirs(defects_dir, exist_ok=True)
        shutil.copy(path, os.path.join(defects_dir, case.name + ".yml"))

    batched = [case for case in cases if not case.solo]
    for start in range(0, len(batched), batch_size):
        batch = batched[start: start + batch_size]
        folder = os.path.join(workdir, f"batch{start // batch_size + 1:03d}")
        os.makedirs(folder)
        paths = {}
        for case in batch:
            path = os.path.join(folder, case.name + ".yml")
            with open(path, "wb") as handle:
                handle.write(case.data)
            paths[path] = case
        status, out, err, seconds = run_validate(binary, [folder], batch_timeout, env)
        outcome.batches += 1
        known = len(outcome.defects)
        rerun = judge_output(batch, paths, status, out, outcome, folder_mode=True)
        for defect in outcome.defects[known:]:
            if defect["case"]:
                os.makedirs(defects_dir, exist_ok=True)
                shutil.copy(os.path.join(folder, defect["case"] + ".yml"), defects_dir)
        state = "timed out" if status is None else f"exit {status}"
        log(f"  pipelines: batch {outcome.batches} ({len(batch)} files) {state} in {seconds:.1f}s"
            + (f"; running its files one at a time" if rerun else ""))
        for case in rerun:
            run_alone(case)
        shutil.rmtree(folder, ignore_errors=True)
    solo = [case for case in cases if case.solo]
    for case in solo:
        outcome.solo_runs += 1
        run_alone(case)
    if solo:
        log(f"  pipelines: {len(solo)} big alias files run one at a time")
    outcome.seconds = time.monotonic() - started
    return outcome
