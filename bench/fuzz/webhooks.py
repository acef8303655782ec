"""Webhook parser fuzzing against a running daemon.

Deliveries to /hooks/{github,gitlab,gitea,bitbucket}, most of them validly signed, with bodies that are
truncated, deeply nested (10^3 to 10^5 levels), huge (around and over --max-body), not UTF-8, of the wrong
types field by field, empty, or otherwise odd; plus bad signatures and repeated delivery ids. Requests go
over a raw socket (the body is sent from a second thread while the answer is read, so an early 413 is seen
even when the daemon stops reading). Checks: never a 5xx, never a dropped connection or a hang, the status
the contract names where it names one, and every answer in its documented shape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field

ZERO = "0" * 40
MAX_BODY = 5 * 1024 * 1024

FORGES = {
    # forge: (event header, push event, delivery-id header)
    "github": ("X-GitHub-Event", "push", "X-GitHub-Delivery"),
    "gitlab": ("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID"),
    "gitea": ("X-Gitea-Event", "push", "X-Gitea-Delivery"),
    "bitbucket": ("X-Event-Key", "repo:push", "X-Request-Id"),
}

WRONG_VALUES = [None, 0, -1, 1.5, 1e308, True, False, "", "x" * 10_000, [], {}, [1, "a", None], {"a": {"b": []}},
                "\u0000", "refs/heads/main\u0000x", "\ud800", "ü" * 100, -9223372036854775808, 18446744073709551616]


@dataclass
class Target:
    """A repository the daemon knows (or not), with the secret that signs for it."""
    app: str | None
    url: str
    secret: str
    commits: list[str]
    branch: str = "main"


@dataclass
class WebhookCase:
    number: int
    forge: str
    kind: str
    body: bytes
    headers: list[tuple[str, bytes]]
    expect: set[int] | None = None          # statuses the contract allows here; None: any non-5xx
    expect_nothing: bool = False           # a 202 must have matched == [] and deployments == []
    chunked: bool = False
    declared_length: int | None = None     # a Content-Length that differs from the body (413 cases only)
    family: str = ""
    status: int | None = None
    response: bytes = b""
    content_type: str = ""
    error: str | None = None
    seconds: float = 0.0


@dataclass
class RawResponse:
    status: int | None = None
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    send_error: str | None = None


def raw_request(port: int, method: str, path: str, headers: list[tuple[str, bytes]], body: bytes,
                chunked: bool = False, declared_length: int | None = None, timeout: float = 60.0) -> RawResponse:
    """One HTTP/1.1 request on its own connection (Connection: close). The body goes out from a second thread
    while this one reads the answer; a complete answer counts even if sending the rest of the body failed."""
    result = RawResponse()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError as error:
        result.error = f"connect: {error}"
        return result
    head = [f"{method} {path} HTTP/1.1".encode(), f"Host: 127.0.0.1:{port}".encode(), b"Connection: close"]
    for name, value in headers:
        head.append(name.encode() + b": " + value)
    if chunked:
        head.append(b"Transfer-Encoding: chunked")
    else:
        head.append(b"Content-Length: %d" % (declared_length if declared_length is not None else len(body)))
    request_head = b"\r\n".join(head) + b"\r\n\r\n"

    def send() -> None:
        try:
            sock.sendall(request_head)
            step = 64 * 1024
            for offset in range(0, len(body), step):
                piece = body[offset: offset + step]
                sock.sendall((b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError as error:
            result.send_error = f"{type(error).__name__}: {error}"

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data = b""
    try:
        while True:
            parsed = _parse_response(data)
            if parsed is not None:
                result.status, result.headers, result.body = parsed
                break
            chunk = sock.recv(256 * 1024)
            if not chunk:
                parsed = _parse_response(data, eof=True)
                if parsed is not None:
                    result.status, result.headers, result.body = parsed
                else:
                    result.error = "the connection closed before a complete answer" + (
                        f" ({len(data)} bytes of it)" if data else " (nothing received)")
                break
            data += chunk
    except socket.timeout:
        result.error = f"no complete answer within {timeout:g}s (a hang)"
    except OSError as error:
        parsed = _parse_response(data, eof=True)
        if parsed is not None:
            result.status, result.headers, result.body = parsed
        else:
            result.error = f"the connection dropped: {type(error).__name__}: {error}"
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        sender.join(timeout=5)
    return result


def _parse_response(data: bytes, eof: bool = False):
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    try:
        status = int(lines[0].split(b" ")[1])
    except (IndexError, ValueError):
        return (0, {}, data) if eof else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    rest = data[end + 4:]
    if "content-length" in headers:
        length = int(headers["content-length"])
        return (status, headers, rest[:length]) if len(rest) >= length else None
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, offset = b"", 0
        while True:
            line_end = rest.find(b"\r\n", offset)
            if line_end < 0:
                return None
            size = int(rest[offset:line_end].split(b";")[0] or b"0", 16)
            if size == 0:
                return status, headers, body
            if len(rest) < line_end + 2 + size + 2:
                return None
            body += rest[line_end + 2: line_end + 2 + size]
            offset = line_end + 2 + size + 2
    return (status, headers, rest) if eof else None


# ----------------------------------------------------------------------------------------------------------
# Payloads, shaped like each forge's documented push payload


def payload(forge: str, target: Target, after: str, before: str = ZERO, ref: str | None = None) -> dict:
    ref = ref or f"refs/heads/{target.branch}"
    name = target.url.rstrip("/").split("/")[-1].removesuffix(".git")
    if forge in ("github", "gitea"):
        return {
            "ref": ref, "before": before, "after": after, "created": False, "deleted": False, "forced": False,
            "compare": "https://example.com/compare", "commits": [{"id": after, "message": "fuzz", "author": {"name": "F"}}],
            "head_commit": {"id": after, "message": "fuzz"},
            "repository": {"id": 7, "name": name, "full_name": f"fuzz/{name}", "clone_url": target.url,
                           "html_url": f"https://example.com/fuzz/{name}", "ssh_url": f"git@example.com:fuzz/{name}.git",
                           "default_branch": "main"},
            "pusher": {"name": "fuzz", "email": "fuzz@example.com"}, "sender": {"login": "fuzz", "id": 1},
        }
    if forge == "gitlab":
        return {
            "object_kind": "push", "event_name": "push", "ref": ref, "before": before, "after": after,
            "checkout_sha": after, "user_name": "Fuzz", "project_id": 7,
            "project": {"id": 7, "name": name, "web_url": f"https://gitlab.example.com/fuzz/{name}",
                        "git_http_url": target.url, "git_ssh_url": f"git@gitlab.example.com:fuzz/{name}.git",
                        "default_branch": "main"},
            "repository": {"name": name, "url": f"git@gitlab.example.com:fuzz/{name}.git", "homepage": f"https://gitlab.example.com/fuzz/{name}"},
            "commits": [{"id": after, "message": "fuzz"}], "total_commits_count": 1,
        }
    branch = ref.removeprefix("refs/heads/")
    return {  # Bitbucket Cloud
        "actor": {"display_name": "Fuzz"},
        "repository": {"full_name": f"fuzz/{name}", "name": name, "type": "repository",
                       "links": {"html": {"href": f"https://bitbucket.org/fuzz/{name}"},
                                 "clone": [{"name": "https", "href": target.url}]}},
        "push": {"changes": [{"new": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": after}},
                              "old": {"type": "branch", "name": branch, "target": {"type": "commit", "hash": before}},
                              "created": False, "closed": False, "forced": False}]},
    }


def bitbucket_server_payload(target: Target, after: str) -> dict:
    name = target.url.rstrip("/").split("/")[-1].removesuffix(".git")
    return {
        "eventKey": "repo:refs_changed", "date": "2026-11-25T10:00:00+0000", "actor": {"name": "fuzz"},
        "repository": {"slug": name, "name": name, "links": {"clone": [{"href": target.url, "name": "http"}]}},
        "changes": [{"ref": {"id": f"refs/heads/{target.branch}", "displayId": target.branch, "type": "BRANCH"},
                     "refId": f"refs/heads/{target.branch}", "fromHash": ZERO, "toHash": after, "type": "UPDATE"}],
    }


def signature_headers(forge: str, body: bytes, secret: str | None) -> list[tuple[str, bytes]]:
    if secret is None:
        return []
    if forge == "gitlab":
        return [("X-Gitlab-Token", secret.encode())]
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if forge == "github":
        return [("X-Hub-Signature-256", b"sha256=" + digest)]
    if forge == "gitea":
        return [("X-Gitea-Signature", digest)]
    return [("X-Hub-Signature", b"sha256=" + digest)]


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, prefix + (index,))


def _set(document, path, value):
    if not path:
        return value
    inner = document
    for step in path[:-1]:
        inner = inner[step]
    inner[path[-1]] = value
    return document


def _dumps(document) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


class CaseMaker:
    def __init__(self, rng: random.Random, targets: list[Target], daemon_secret: str):
        self.rng = rng
        self.targets = targets
        self.daemon_secret = daemon_secret
        self.number = 0
        self.cursor: dict[str, int] = {}  # per forge: which field the next wrong_type case breaks

    def _target(self) -> Target:
        return self.rng.choice(self.targets)

    def _base(self, forge: str, target: Target | None = None) -> tuple[Target, dict]:
        target = target or self._target()
        after = self.rng.choice(target.commits + ["%040x" % self.rng.getrandbits(160), ZERO])
        if forge == "bitbucket" and self.rng.random() < 0.3:
            return target, bitbucket_server_payload(target, after)
        return target, payload(forge, target, after, before=self.rng.choice(target.commits + [ZERO]))

    def make(self, forge: str, kind: str, body: bytes, target: Target | None, sign_with: str | None = "auto",
             expect: set[int] | None = None, event: str | None = None, extra: list | None = None,
             delivery_id: bytes | None = None, **options) -> WebhookCase:
        self.number += 1
        event_header, push_event, id_header = FORGES[forge]
        secret = (target.secret if target else self.daemon_secret) if sign_with == "auto" else sign_with
        headers = [("Content-Type", b"application/json"), ("User-Agent", b"slipway-fuzz"),
                   (event_header, (event if event is not None else push_event).encode("latin-1"))]
        headers.append((id_header, delivery_id if delivery_id is not None else b"fuzz-%d-%x" % (self.number, self.rng.getrandbits(48))))
        headers += signature_headers(forge, body, secret)
        headers += extra or []
        if target is not None and target.secret != self.daemon_secret and expect and 400 in expect:
            # A body whose repository cannot be read names no app, so only the daemon's secret could sign
            # it, and this one was signed with the app's own: 401 is as right as 400.
            expect = expect | {401}
        return WebhookCase(self.number, forge, kind, body, headers, expect, **options)

    # -- the kinds of case --------------------------------------------------------------------------------

    def valid(self, forge):
        target, document = self._base(forge)
        return self.make(forge, "valid", _dumps(document), target, expect={202})

    def wrong_type(self, forge):
        target, document = self._base(forge)
        paths = [p for p in _paths(document) if p]
        # Field after field, round and round, so every field of every forge's payload gets its turn.
        turn = self.cursor.get(forge, 0)
        self.cursor[forge] = turn + 1
        path = paths[turn % len(paths)]
        value = self.rng.choice(WRONG_VALUES)
        document = _set(document, path, value)
        return self.make(forge, f"wrong type at {'.'.join(map(str, path))}", _dumps(document), target, expect={202, 400})

    def remove_field(self, forge):
        target, document = self._base(forge)
        path = self.rng.choice([p for p in _paths(document) if p])
        inner = document
        for step in path[:-1]:
            inner = inner[step]
        del inner[path[-1]]
        return self.make(forge, f"without {'.'.join(map(str, path))}", _dumps(document), target, expect={202, 400})

    def truncated(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        body = body[: self.rng.randrange(len(body))]
        return self.make(forge, "truncated JSON", body, target, expect={400})

    def deep(self, forge):
        depth = self.rng.choice([1_000, 10_000, 50_000, 100_000])
        where = self.rng.choice(["top", "repository", "ref", "unknown_key"])
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")])
        nested = opener * depth + b"1" + closer * depth
        if where == "top":
            body, target, expect = nested, None, {400}
        else:
            target, document = self._base(forge)
            marker = "\u2603NESTED\u2603"
            key = {"repository": "repository", "ref": "ref", "unknown_key": "zz_extra"}[where]
            document[key] = marker
            body = _dumps(document).replace(json.dumps(marker, ensure_ascii=False).encode(), nested)
            expect = {202, 400}
        unsigned = self.rng.random() < 0.2
        return self.make(forge, f"nested {depth} deep at {where}" + (" (unsigned)" if unsigned else ""), body, target,
                         sign_with=None if unsigned else "auto", expect={401} if unsigned else expect)

    def huge(self, forge):
        size = self.rng.choice([MAX_BODY - 4096, MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, MAX_BODY + 65536, 8 * 1024 * 1024])
        chunked = self.rng.random() < 0.35
        target, document = self._base(forge)
        style = self.rng.choice(["string", "commits"])
        if style == "commits":
            document["commits"] = [{"id": "%040x" % i, "message": "m" * 200, "added": ["a/b/c"] * 10} for i in range(2)]
        document["zz_padding"] = ""
        body = _dumps(document)
        if style == "commits":
            unit = _dumps({"id": "0" * 40, "message": "m" * 200, "added": ["a/b/c"] * 10}) + b","
            count = max(0, (size - len(body)) // len(unit) - 1)
            body = body.replace(b'"commits": [', b'"commits": [' + unit * count, 1)
        pad = size - len(body)
        if pad < 0:
            body = body[:size]
        else:
            body = body.replace(b'"zz_padding": ""', b'"zz_padding": "' + b"p" * pad + b'"', 1)
        assert len(body) == size, (len(body), size)
        expect = {413} if size > MAX_BODY else {202}
        return self.make(forge, f"{size} bytes{' chunked' if chunked else ''}", body, target, expect=expect, chunked=chunked)

    def lying_length(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        return self.make(forge, "Content-Length over the limit, small body", body, target, expect={413},
                         declared_length=self.rng.choice([MAX_BODY + 1, 2**31, 2**63 - 1]))

    def bad_utf8(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        junk = self.rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xf4\x90\x80\x80"])
        anchor = self.rng.choice([b"refs/heads/", b'"after": "', b"file://", b'"name": "'])
        at = body.find(anchor)
        at = at + len(anchor) if at >= 0 else self.rng.randrange(len(body))
        body = body[:at] + junk + body[at:]
        return self.make(forge, "invalid UTF-8", body, target, expect={202, 400})

    def odd_json(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        choice = self.rng.choice(["bom", "trailing", "leading", "dup_key", "nan", "big_number", "escapes", "nul", "comment", "single_quotes"])
        expect = {202, 400}
        if choice == "bom":
            body = b"\xef\xbb\xbf" + body
        elif choice == "trailing":
            body = body + self.rng.choice([b"xyz", b"}", b",", b"\x00", b" {}"])
            expect = {400}
        elif choice == "leading":
            body = b" \n\t\r" + body
        elif choice == "dup_key":
            body = b'{"ref": 5, "after": [], ' + body[1:]
        elif choice == "nan":
            body = body[:-1] + self.rng.choice([b', "n": NaN}', b', "n": Infinity}', b', "n": -Infinity}'])
        elif choice == "big_number":
            body = body[:-1] + self.rng.choice([b', "n": 1e999999}', b', "n": 123456789012345678901234567890123}', b', "n": -0}', b', "n": 1.0e-999999}'])
        elif choice == "escapes":
            body = body[:-1] + self.rng.choice([b', "s": "\\ud800"}', b', "s": "\\udfff\\ud800"}', b', "s": "\\u0000"}', b', "s": "\\x41"}', b', "s": "\\u12"}'])
        elif choice == "nul":
            body = body.replace(b'"ref"', b'"re\x00f"', 1)
        elif choice == "comment":
            body = b"/* c */" + body
            expect = {400}
        else:
            body = body.replace(b'"', b"'")
            expect = {400}
        return self.make(forge, f"odd JSON ({choice})", body, target, expect=expect)

    def not_object(self, forge):
        body = self.rng.choice([b"", b" ", b"\n", b"null", b"[]", b"1", b'"push"', b"true", b"[{}]", b"{", b"}", b"\x00", b"\xff\xfe"])
        return self.make(forge, f"not an object: {body[:10]!r}", body, None, expect={400})

    def wide(self, forge):
        target, document = self._base(forge)
        count = self.rng.choice([10_000, 100_000])
        if self.rng.random() < 0.5:
            document["zz_wide"] = {f"k{i}": i for i in range(count)}
        else:
            document["zz_long"] = list(range(count))
        return self.make(forge, f"{count} wide", _dumps(document), target, expect={202})

    def bad_signature(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        good = signature_headers(forge, body, target.secret)
        name = good[0][0]
        choice = self.rng.choice(["missing", "wrong_secret", "tampered", "empty", "prefix_only", "sha1", "truncated",
                                  "not_hex", "long", "spaces", "other_forge_header"])
        value = good[0][1]
        if choice == "missing":
            headers = []
        elif choice == "wrong_secret":
            headers = signature_headers(forge, body, "wrong-" + target.secret)
        elif choice == "tampered":
            headers = good
            if forge == "gitlab":  # the token does not cover the body: a wrong token instead
                headers = [(name, value + b"x")]
            else:  # every payload names "fuzz" somewhere
                body = body.replace(b"fuzz", b"fuzZ", 1) if b"fuzz" in body else body + b" "
        elif choice == "empty":
            headers = [(name, b"")]
        elif choice == "prefix_only":
            headers = [(name, b"sha256=")]
        elif choice == "sha1":
            headers = [(name, b"sha1=" + hmac.new(target.secret.encode(), body, hashlib.sha1).hexdigest().encode())]
        elif choice == "truncated":
            headers = [(name, value[:-2])]
        elif choice == "not_hex":
            headers = [(name, value[:-2] + b"zz")]
        elif choice == "long":
            headers = [(name, value * 200)]
        elif choice == "spaces":  # a space inside the value (around it, HTTP itself would drop them)
            headers = [(name, value[:12] + b" " + value[12:])] if forge != "gitlab" else [(name, value + b" x")]
        else:
            others = {"github": "gitea", "gitea": "bitbucket", "bitbucket": "github", "gitlab": "github"}
            headers = signature_headers(others[forge], body, target.secret)
        case = self.make(forge, f"bad signature ({choice})", body, target, sign_with=None, expect={401}, extra=headers)
        return case

    def headers_odd(self, forge):
        target, document = self._base(forge)
        body = _dumps(document)
        choice = self.rng.choice(["other_event", "no_event", "event_case", "ping", "long_id", "odd_id", "empty_id",
                                  "no_content_type", "text_content_type", "long_header", "many_headers"])
        event, extra, delivery_id, expect, nothing = None, [], None, {202}, False
        if choice == "other_event":
            event = self.rng.choice(["issues", "pull_request", "Tag Push Hook", "repo:fork", "create", "x" * 300, "pushed"])
            nothing = True
        elif choice == "no_event":
            event = ""
            nothing = True
        elif choice == "event_case":
            event = FORGES[forge][1].upper()
        elif choice == "ping":
            event = {"github": "ping", "gitlab": "System Hook", "gitea": "ping", "bitbucket": "diagnostics:ping"}[forge]
            expect = {200} if forge == "github" else {202}
            nothing = forge != "github"
        elif choice == "long_id":
            delivery_id = b"d" * 8000
        elif choice == "odd_id":
            delivery_id = self.rng.choice([b"\xe9\xe8", b"a b\tc", b"'; DROP TABLE deliveries; --", b"../../etc/passwd", b"%00"])
        elif choice == "empty_id":
            delivery_id = b""
        elif choice == "long_header":
            extra = [("X-Fuzz-Long", b"h" * 16_000)]
        elif choice == "many_headers":
            extra = [(f"X-Fuzz-{i}", b"v") for i in range(200)]
        case = self.make(forge, f"headers ({choice})", body, target, event=event, extra=extra, delivery_id=delivery_id,
                         expect=expect, expect_nothing=nothing)
        if choice == "no_content_type":
            case.headers = [h for h in case.headers if h[0] != "Content-Type"]
        elif choice == "text_content_type":
            case.headers = [h if h[0] != "Content-Type" else ("Content-Type", b"text/plain; charset=latin1") for h in case.headers]
            case.expect = {202, 400}
        return case

    def repeat(self, forge, earlier: WebhookCase):
        """The same delivery again (same id, body and signature)."""
        self.number += 1
        return WebhookCase(self.number, earlier.forge, f"repeat of #{earlier.number}", earlier.body, list(earlier.headers),
                           expect={202}, expect_nothing=True)


KINDS = [
    ("valid", 12), ("wrong_type", 22), ("remove_field", 8), ("truncated", 10), ("deep", 5), ("huge", 1.6),
    ("lying_length", 1), ("bad_utf8", 6), ("odd_json", 9), ("not_object", 5), ("wide", 1), ("bad_signature", 10),
    ("headers_odd", 8), ("repeat", 6),
]


def generate_cases(count: int, rng: random.Random, targets: list[Target], daemon_secret: str) -> list:
    """`count` cases, spread evenly over the four forges, kinds drawn by weight."""
    maker = CaseMaker(rng, targets, daemon_secret)
    names = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    cases: list = []
    forges = list(FORGES)
    for index in range(count):
        forge = forges[index % len(forges)]
        kind = rng.choices(names, weights)[0]
        earlier = [i for i, c in enumerate(cases) if isinstance(c, WebhookCase) and c.kind == "valid" and c.forge == forge]
        if kind == "repeat" and not earlier:
            kind = "valid"
        case = maker.repeat(forge, cases[rng.choice(earlier)]) if kind == "repeat" else getattr(maker, kind)(forge)
        case.family = kind
        cases.append(case)
    return cases


# ----------------------------------------------------------------------------------------------------------


class ShapeChecker:
    """Checks answers against the OpenAPI document's schemas when jsonschema and PyYAML are there; otherwise
    checks the top-level keys only."""

    def __init__(self, openapi_text: str | None):
        self.validators = {}
        try:
            import jsonschema
            import yaml
            document = yaml.safe_load(openapi_text) if openapi_text else None
            if document:
                for name in ("WebhookResult", "Error", "Status"):
                    self.validators[name] = jsonschema.Draft202012Validator(
                        {**document, "$ref": f"#/components/schemas/{name}"},
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        except ImportError:
            pass
        self.mode = "the OpenAPI schemas (jsonschema)" if self.validators else "top-level keys only"

    def problem(self, name: str, value) -> str | None:
        if name in self.validators:
            errors = sorted(self.validators[name].iter_errors(value), key=lambda e: e.path)
            return f"{errors[0].message[:200]} at {list(errors[0].absolute_path)}" if errors else None
        keys = {"WebhookResult": {"matched", "deployments"}, "Error": {"error"}, "Status": {"status"}}[name]
        return None if isinstance(value, dict) and set(value) == keys else f"keys {sorted(value) if isinstance(value, dict) else type(value).__name__}"


def judge(case: WebhookCase, shapes: ShapeChecker) -> list[str]:
    problems = []
    if case.error:
        return [case.error]
    if case.status >= 500:
        problems.append(f"answered {case.status}")
    if case.expect is not None and case.status not in case.expect:
        problems.append(f"answered {case.status}, expected {sorted(case.expect)}")
    schema = {200: "Status", 202: "WebhookResult"}.get(case.status, "Error")
    if not case.content_type.startswith("application/json"):
        problems.append(f"Content-Type {case.content_type!r}")
    try:
        value = json.loads(case.response)
    except ValueError:
        problems.append(f"a body that is not JSON: {case.response[:120]!r}")
        return problems
    problem = shapes.problem(schema, value)
    if problem:
        problems.append(f"a {case.status} body that breaks the {schema} schema: {problem}")
    if case.status == 202 and case.expect_nothing and isinstance(value, dict) and (value.get("matched") or value.get("deployments")):
        problems.append(f"matched or deployed something: {json.dumps(value)[:200]}")
    return problems


def run_webhook_fuzz(port: int, count: int, seed: int, targets: list[Target], daemon_secret: str,
                     openapi_text: str | None, log=print) -> dict:
    rng = random.Random(seed)
    cases = generate_cases(count, rng, targets, daemon_secret)
    shapes = ShapeChecker(openapi_text)
    by_status: dict[str, int] = {}
    by_forge: dict[str, dict[str, int]] = {forge: {} for forge in FORGES}
    defects = []
    send_errors = 0
    started = time.monotonic()
    for position, case in enumerate(cases, start=1):
        begun = time.monotonic()
        response = raw_request(port, "POST", f"/hooks/{case.forge}", case.headers, case.body, chunked=case.chunked,
                               declared_length=case.declared_length)
        case.seconds = time.monotonic() - begun
        case.status, case.error = response.status, response.error
        case.response, case.content_type = response.body, response.headers.get("content-type", "")
        if response.send_error:
            send_errors += 1
        key = str(case.status) if case.status is not None else "no answer"
        by_status[key] = by_status.get(key, 0) + 1
        by_forge[case.forge][key] = by_forge[case.forge].get(key, 0) + 1
        problems = judge(case, shapes)
        if problems:
            defects.append({
                "case": case.number, "forge": case.forge, "kind": case.kind, "problems": problems,
                "status": case.status, "size": len(case.body), "chunked": case.chunked,
                "answer": case.response[:300].decode("utf-8", "replace"),
                "headers": [(n, v[:80].decode("latin-1")) for n, v in case.headers],
                "body_head": base64.b64encode(case.body[:200]).decode(),
            })
        if position % 500 == 0:
            log(f"  webhooks: {position}/{len(cases)} sent, {len(defects)} with a problem")
    kinds: dict[str, int] = {}
    for case in cases:
        kinds[case.family] = kinds.get(case.family, 0) + 1
    return {"cases": len(cases), "by_status": by_status, "by_forge": by_forge, "defects": defects,
            "seconds": time.monotonic() - started, "send_errors": send_errors, "shape_mode": shapes.mode,
            "kinds": kinds, "slowest": max(((c.seconds, c.number, c.kind) for c in cases), default=(0, 0, ""))}
