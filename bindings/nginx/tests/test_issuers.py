"""Several issuers in one nginx location: `jwtguard_issuers { ... }` beside (or instead of)
`jwtguard_issuer`, each line its own keys and policy; a token's `iss` picks the issuer."""

from __future__ import annotations

import shutil
import sys

import pytest

from conftest import AUDIENCE, ROOT, Nginx, free_port, fresh_prefix

sys.path.insert(0, str(ROOT / "tests" / "support"))
from harness import MINTED_ISSUER  # noqa: E402
from fixtures import minter  # noqa: E402,F401 (a fixture)
from test_review import MINIMAL, nginx_t  # noqa: E402

CONFIG = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/json;
    # Only the block: its first line is the first issuer.
    jwtguard_issuers {{
        {minted} audience={audience} jwks_uri={jwks} algorithms=ES256,RS256 leeway=0;
    }}
    server {{
        listen 127.0.0.1:{port};
        root html;
        location = /api/public {{ try_files /api/public.json =404; }}
        location = /minted-only {{ jwtguard on; try_files /api/private.json =404; }}
        # jwtguard_issuer beside the inherited block: both issuers.
        location = /both {{
            jwtguard on;
            jwtguard_issuer {issuer};
            jwtguard_audience {audience};
            try_files /api/private.json =404;
        }}
        location = /scoped {{
            jwtguard on;
            jwtguard_issuer {issuer};
            jwtguard_audience {audience};
            jwtguard_require_scope read:messages;
            try_files /api/private-scoped.json =404;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(issuer, minter):
    port = free_port()
    config = CONFIG.format(issuer=issuer.url, audience=AUDIENCE, minted=MINTED_ISSUER, jwks=minter.jwks_uri, port=port)
    path = fresh_prefix("issuers")
    server = Nginx(path, config, port)
    yield server
    server.close()
    shutil.rmtree(path, ignore_errors=True)


def test_each_issuers_tokens_pass_against_their_own_keys(nginx, issuer, minter):
    assert nginx.get("/both", issuer.token())[0] == 200
    assert nginx.get("/both", minter.token("ES256"))[0] == 200
    assert nginx.get("/both", minter.token("RS256"))[0] == 200
    assert nginx.get("/scoped", minter.token("ES256"))[0] == 200
    assert nginx.get("/scoped", minter.token("ES256", scope="openid"))[0] == 403
    # The minter's key signing a token that claims the dev issuer: refused.
    status, head, body = nginx.get("/both", minter.token("RS256", iss=issuer.url))
    assert status == 401 and 'error="invalid_token"' in head["WWW-Authenticate"], body
    # Each issuer's own policy: leeway 0 for the minted issuer.
    late = minter.token("ES256", exp=minter.claims()["iat"] - 2)
    assert nginx.get("/both", late)[0] == 401
    # The block-only location knows the minted issuer alone.
    assert nginx.get("/minted-only", minter.token("ES256"))[0] == 200
    assert nginx.get("/minted-only", issuer.token())[0] == 401
    assert nginx.get("/minted-only", minter.token("RS256"))[0] == 200
    assert nginx.get("/minted-only", minter.token("RS256", iss=issuer.url))[0] == 401


def test_an_unknown_iss_is_refused_without_any_fetch(nginx, issuer, minter):
    nginx.get("/both", issuer.token())
    before = issuer.jwks_requests()
    for iss in ("https://evil.example/", issuer.url.rstrip("/")):
        status, head, _ = nginx.get("/both", minter.token("ES256", iss=iss))
        assert status == 401 and 'error="invalid_token"' in head["WWW-Authenticate"]
    assert issuer.jwks_requests() == before


@pytest.mark.parametrize("block, message", [
    ("jwtguard_issuers { https://b.example/ jwks_uri=https://b.example/k; }", "needs audience="),
    ("jwtguard_issuers { https://b.example/ audience=a colour=blue; }", 'unknown or empty parameter "colour=blue"'),
    ("jwtguard_issuers { https://b.example/ audience=; }", 'unknown or empty parameter "audience="'),
    ("jwtguard_issuers { https://b.example/ audience=a algorithms=HS256; }", '"algorithms=HS256" for https://b.example/'),
    ("jwtguard_issuers { https://b.example/ audience=a leeway=-5; }", '"leeway=-5"'),
    ("jwtguard_issuers { https://b.example/ audience=a jwks_uri=http://b.example/k; }", "jwtguard"),
    ("jwtguard_issuers { }", "holds no issuer"),
    ("jwtguard_issuers { https://tenant.example/ audience=a jwks_uri=https://b.example/k; }", "invalid"),
])
def test_a_bad_issuers_block_fails_nginx_t_with_a_message(block, message):
    result = nginx_t(MINIMAL.format(extra=block, port=free_port(), location=""))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


BLOCK_ONLY = """
load_module modules/ngx_http_jwtguard_module.so;
pid nginx.pid;
error_log logs/error.log;
events {{ }}
http {{
    jwtguard_issuers {{ https://b.example/ audience=a jwks_uri=https://b.example/k; }}
    server {{ listen 127.0.0.1:{port}; location / {{ jwtguard on; {location} }} }}
}}
"""


@pytest.mark.parametrize("location", [
    "jwtguard_audience https://other.example;",
    "jwtguard_algorithms ES256;",
    "jwtguard_jwks_uri https://b.example/other;",
    "jwtguard_leeway 0;",
    "jwtguard_strict on;",
])
def test_a_policy_directive_without_jwtguard_issuer_is_refused_not_dropped(location):
    # With only a jwtguard_issuers block, these would apply to no issuer: nginx -t says so.
    result = nginx_t(BLOCK_ONLY.format(port=free_port(), location=location))
    assert result.returncode != 0
    assert "apply to jwtguard_issuer's issuer" in result.stderr, result.stderr
    assert nginx_t(BLOCK_ONLY.format(port=free_port(), location="")).returncode == 0
