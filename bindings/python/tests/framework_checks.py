"""What every web integration (Flask, FastAPI, Django) must answer alike, run by each
framework's own test module through its in-process client (test_flask.py, test_fastapi.py,
test_django.py), so that each also runs on its framework's oldest declared version
(`make python-floor-test`): review 3 (issue 23) items 4, 9, 10, 16 and 17.

Each check takes `get(path, headers, host="api.example") -> (status, JSON body or None,
WWW-Authenticate or None)`: a GET of `path` (the request target as a client sends it,
percent-encoding intact) on plain HTTP with that `Host` header, against an app whose routes
/api/private and /api/private-scoped, and /api/files/<any path> (answering {"file": the
path the framework decoded}), are guarded by a verifier of the PyJWT minter's tokens
(tests/support/minter.py). `asgi_call` is the in-process ASGI client of the FastAPI and
Django modules."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote

from dpop import NO_TOKEN_CHALLENGE, DpopClient, challenge, error

Answer = Tuple[int, Optional[dict], Optional[str]]
Get = Callable[..., Answer]

MALFORMED = error("invalid_request", "Authorization header must be 'Bearer <token>'")


def check_unsupported_schemes(get: Get, get_dpop_off: Get, token: str) -> None:
    """Item 9: a scheme jwtguard does not take (RFC 6750 section 3.1: "an unsupported
    authentication method") is 401 with the quickstart's `invalid_header` and a challenge
    without `error`; `DPoP` under dpop off likewise; a malformed header of a supported scheme
    stays 400 `invalid_request`."""
    for header in ("Basic dXNlcjpwYXNz", "Token x", "Digest a=b", f"Basic {token}", "Basic"):
        status, body, head = get("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (401, "invalid_header"), (header, status, body)
        assert head == NO_TOKEN_CHALLENGE, (header, head)
        status, body, head = get_dpop_off("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (401, "invalid_header"), (header, status, body)
        assert head == 'Bearer realm="api"', (header, head)
    status, body, head = get_dpop_off("/api/private", {"Authorization": f"DPoP {token}"})
    assert (status, (body or {}).get("code")) == (401, "invalid_header"), (status, body)
    assert head == 'Bearer realm="api"', head
    for header in ("Bearer", "Bearer a b", f"Bearer {token} {token}"):
        status, body, head = get("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (400, "invalid_header"), (header, status, body)
        assert head == challenge(bearer=MALFORMED), (header, head)
        status, body, head = get_dpop_off("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (400, "invalid_header"), (header, status, body)
        assert head == 'Bearer realm="api"' + MALFORMED, (header, head)
    # A token the scheme does not hide still verifies.
    assert get("/api/private", {"Authorization": f"Bearer {token}"})[0] == 200


def dpop_call(client: DpopClient, token: str, url: str) -> Dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": client.proof(url=url, token=token)}


def check_proof_url_host(get: Get, client: DpopClient, token: str, refused: Tuple[int, Optional[str]],
                         bearer: str, bearer_status: int) -> None:
    """Item 4: the URL a proof is checked against is built from the `Host` header only when it
    is `host[:port]` (jwtguard.is_authority). `Host: api.example/x` would turn a request for
    /api/private into http://api.example/x/api/private: a proof made for that URL is refused
    (`refused`: the status and JSON code the framework answers), while the same request with
    `Host: api.example` and a proof for its own URL passes. A bearer token needs no URL: with
    such a Host it gets `bearer_status` (200 where the framework leaves the Host to jwtguard)."""
    assert get("/api/private", dpop_call(client, token, "http://api.example/api/private"))[0] == 200
    for host, url in (
        ("api.example/x", "http://api.example/x/api/private"),
        ("api.example/x/", "http://api.example/x//api/private"),
        ("api.example:80/x", "http://api.example/x/api/private"),
        ("api.example?", "http://api.example/api/private"),
        ("user@api.example", "http://user@api.example/api/private"),
    ):
        status, body, _ = get("/api/private", dpop_call(client, token, url), host=host)
        assert (status, (body or {}).get("code")) == refused, (host, status, body)
    # A proof for the URL the request would have had with a clean Host does not pass either.
    status, body, _ = get("/api/private", dpop_call(client, token, "http://api.example/api/private"),
                          host="api.example/x")
    assert (status, (body or {}).get("code")) == refused, (status, body)
    assert get("/api/private", {"Authorization": f"Bearer {bearer}"}, host="api.example/x")[0] == bearer_status


def check_pinned_origins(get: Get, client: DpopClient, token: str) -> None:
    """Item 17: with the API's origin pinned (dpop_origins: http://api.example), a proof is
    accepted for a request on that origin, and refused for any other Host, though it names the
    very URL that Host makes; bearer tokens are not concerned."""
    assert get("/api/private", dpop_call(client, token, "http://api.example/api/private"))[0] == 200
    assert get("/api/private-scoped", dpop_call(client, token, "http://api.example/api/private-scoped"))[0] == 200
    for host in ("evil.example", "api.example:8080", "127.0.0.1", "API.example.evil"):
        status, body, head = get("/api/private", dpop_call(client, token, f"http://{host}/api/private"), host=host)
        assert (status, (body or {}).get("code")) == (401, "invalid_dpop_proof"), (host, status, body)
        assert head == challenge(dpop=error("invalid_dpop_proof", "DPoP proof is for another URL (htu)")), head


def asgi_call(app: Any, target: str, headers: Sequence[Tuple[str, str]], scheme: str = "http",
              raw_path: Optional[bytes] = b"", root_path: str = "",
              root_in_path: bool = True) -> Tuple[int, Dict[str, List[str]], bytes]:
    """One GET of the request target `target` through an ASGI app, its scope made as uvicorn
    makes it: `path` percent-decoded (UTF-8), `raw_path` the target's path as sent (`b""`:
    from `target`; None: left out, as the ASGI spec allows), the query apart. A `root_path`
    (uvicorn --root-path behind a proxy that strips it) is put before both, as uvicorn does,
    or (`root_in_path=False`) before neither, as older servers did. Returns (status,
    {lowercase name: [values]}, body)."""
    path_part, _, query = target.partition("?")
    mount = root_path if root_in_path else ""
    scope: Dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": mount + unquote(path_part),
        "root_path": root_path,
        "query_string": query.encode("ascii"),
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    if raw_path is not None:
        scope["raw_path"] = raw_path or (mount + path_part).encode("latin-1")
    answer: Dict[str, Any] = {"status": None, "headers": {}, "body": b""}

    async def run() -> None:
        delivered = False

        async def receive() -> Dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    answer["headers"].setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await app(scope, receive, send)

    asyncio.run(run())
    return answer["status"], answer["headers"], answer["body"]


HTU_REFUSED = (401, "invalid_dpop_proof")


def check_proof_url_is_the_raw_target(get: Get, client: DpopClient, token: str, raw: bool = True) -> None:
    """The URL a proof's `htu` must name has the request target's path as the client sent it
    (`raw`: the host hands the integration the raw target), never a path the framework
    decoded: decoded, `%3F` and `%23` would end the path early (the core drops a query and a
    fragment), and `%2F..%2F` would become a dot segment the core removes, so a proof for
    one resource would be taken at a request the framework routes to another
    (/api/files/public%3Fsecret serves `public?secret`, /api/files%2F..%2Fprivate serves
    `../private`). A `.` or `..` segment the framework routes as it is, where the core would
    remove it, gives no URL. Without the raw target (`raw=False`) the decoded path is
    percent-encoded again: `%2F` then reads as `/`, harmless since the framework routes both
    alike, and whatever decodes to a dot segment gives no URL."""

    def call(target: str, proved: str) -> Answer:
        return get(target, dpop_call(client, token, "http://api.example" + proved))

    accepted = [
        ("/api/files/public", "/api/files/public", "public"),
        ("/api/files/public?x=1", "/api/files/public", "public"),  # a query is not part of it
        ("/api/files/%70ublic", "/api/files/public", "public"),  # an unreserved escape: the same path
        ("/api/files/public", "/api/files/%70ublic", "public"),
        ("/api/files/a%2fb", "/api/files/a%2Fb" if raw else "/api/files/a/b", "a/b"),  # hex digits in any case
        ("/api/files/p%C3%A9", "/api/files/p%c3%a9", "p\u00e9"),
    ]
    if raw:
        # The very target the client sent, whatever the framework makes of it.
        accepted.append(("/api/files/x%2F..%2Fpublic", "/api/files/x%2F..%2Fpublic", "x/../public"))
    for target, proved, name in accepted:
        status, body, head = call(target, proved)
        assert (status, body) == (200, {"file": name}), (target, proved, status, body, head)
    refused = [
        ("/api/files/public%3Fsecret", "/api/files/public"),
        ("/api/files/public%3fsecret", "/api/files/public"),
        ("/api/files/public%23secret", "/api/files/public"),
        ("/api/files/a%253Fb", "/api/files/a%3Fb"),
        ("/api/files/a%253Fb", "/api/files/a"),
        ("/api/files/a%2525", "/api/files/a%25"),
        ("/api/files/x%2F..%2Fpublic", "/api/files/public"),
        ("/api/files/x%2f%2e%2e%2fpublic", "/api/files/public"),
        ("/api/files/x/../public", "/api/files/public"),
        ("/api/files/x/../public", "/api/files/x/../public"),  # a proof for the dotted URL too
        ("/api/files/x/%2E%2E/public", "/api/files/public"),
        ("/api/files/x/%2e./public", "/api/files/public"),
        ("/api/files/./public", "/api/files/public"),
        ("/api/files/public/.", "/api/files/public/"),
        ("/api/files%2F..%2Fprivate", "/api/private"),
        ("/api/files/..%2F..%2Fapi%2Fprivate", "/api/private"),
    ]
    if raw:
        refused += [("/api/files/a%2Fb", "/api/files/a/b"), ("/api/files/x%2F..%2Fpublic", "/api/files/x/../public")]
    else:
        refused += [("/api/files/a%2Fb", "/api/files/a%2Fb"), ("/api/files/x%2F..%2Fpublic", "/api/files/x%2F..%2Fpublic")]
    for target, proved in refused:
        status, body, head = call(target, proved)
        assert (status, (body or {}).get("code")) == HTU_REFUSED, (target, proved, status, body)
        assert head == challenge(dpop=error("invalid_dpop_proof", "DPoP proof is for another URL (htu)")), head


def check_two_authorization_lines(get_lines: Callable[[str, List[Tuple[str, str]]], Answer], token: str) -> None:
    """Item 16: two `Authorization` field lines make a malformed request (400 `invalid_header`,
    the challenge's `invalid_request`), whatever they hold: an empty one, another scheme, a
    good token beside either. `get_lines(path, [(name, value), ...])` sends the lines as the
    host's server would hand them to the framework (a WSGI server joins them with a comma)."""
    basic = "Basic dXNlcjpwYXNz"
    for values in (
        (basic, f"Bearer {token}"),
        (f"Bearer {token}", basic),
        (f"Bearer {token}", ""),
        ("", f"Bearer {token}"),
        (f"Bearer {token}", f"Bearer {token}"),
        ("Token a", basic),
        ("", ""),
        (f"DPoP {token}", "Digest a=b"),
        (basic, ""),
        ("Basic dXNlcjpwYXNzZQ==", ""),
        ("Digest a=b", ""),
        ("Digest a=b", "Token"),
        (basic, "Basic"),
        ("Token", "Token"),
        (basic, basic),
    ):
        status, body, head = get_lines("/api/private", [("Authorization", value) for value in values])
        assert (status, (body or {}).get("code")) == (400, "invalid_header"), (values, status, body)
        assert head is not None and 'error="invalid_request"' in head, (values, head)
    assert get_lines("/api/private", [("Authorization", f"Bearer {token}")])[0] == 200
    # One line of another scheme, its parameters a comma-separated list (quoted commas
    # included): 401, as that scheme's credentials, in every host.
    for value in (basic, "Digest a=b, c=d", 'Digest username="a, b",realm="api", nonce="x,"', "Basic dXNlcjpwYXNzZQ=="):
        status, body, head = get_lines("/api/private", [("Authorization", value)])
        assert (status, (body or {}).get("code")) == (401, "invalid_header"), (value, status, body)
        assert head is not None and "error=" not in head, (value, head)
