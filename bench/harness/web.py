"""HTTP JSON requests to a daemon on loopback."""

import http.client
import json
import time

from harness import FINISHED, HarnessError


def request(port: int, method: str, path: str, body=None, headers: dict | None = None, token: str | None = None,
            timeout: float = 30.0) -> tuple[int, object]:
    """One request on its own connection; (status, the answer parsed as JSON, or as text when it is not JSON, or
    None when it is empty). body: bytes are sent as they are, anything else as JSON. Raises OSError (and
    http.client.HTTPException) when the daemon cannot be reached."""
    sent = {"Accept": "application/json"}
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = "Bearer " + token
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, parse(response.read())
    finally:
        connection.close()


def parse(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def error_message(answer) -> str:
    """`code: message` of an error answer; anything else, shortened."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return "%s: %s" % (answer["error"].get("code"), answer["error"].get("message"))
    return str(answer)[:500]


def get(port: int, path: str, token: str | None = None, timeout: float = 30.0):
    """The answer to GET path; raises HarnessError unless it is a 200."""
    status, answer = request(port, "GET", path, token=token, timeout=timeout)
    if status != 200:
        raise HarnessError("GET %s answered %d: %s" % (path, status, error_message(answer)))
    return answer


def wait_finished(port: int, deployment_id: int, timeout: float = 60.0, poll: float = 0.1,
                  token: str | None = None) -> dict:
    """The deployment once it has ended. Raises HarnessError when it is still going after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = get(port, "/api/v1/deployments/%d" % deployment_id, token=token)
        if answer["status"] in FINISHED:
            return answer
        time.sleep(poll)
    raise HarnessError("deployment %d did not finish within %.0fs" % (deployment_id, timeout))


def wait_apps(port: int, names, timeout: float = 30.0, token: str | None = None) -> None:
    """Waits until GET /api/v1/apps lists every one of the names."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = request(port, "GET", "/api/v1/apps", token=token)
        if status == 200 and {a["name"] for a in body.get("apps", [])} >= set(names):
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"the daemon did not list all {len(names)} apps within {timeout:.0f}s: {body!r}")
        time.sleep(0.1)


def healthy(port: int) -> bool:
    """Whether GET /healthz answers 200 right now."""
    try:
        return request(port, "GET", "/healthz", timeout=2)[0] == 200
    except (OSError, http.client.HTTPException):
        return False
