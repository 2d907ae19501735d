"""The Auth0 "Python API" quickstart's ping API on Django, with jwtguard: one file (settings,
views and URLs), served by Django's own server.

    GET /api/public          no token needed
    GET /api/private         a valid access token
    GET /api/private-scoped  a valid access token with the scope read:messages

Configured from the environment or a .env file beside this script: AUTH0_DOMAIN and
API_IDENTIFIER (a real Auth0 tenant), or JWTGUARD_ISSUER, JWTGUARD_AUDIENCE and optionally
JWTGUARD_JWKS_URI (any OpenID issuer, e.g. `jwtguard dev-issuer`); PORT (default 3010).
In a project, the same settings go in settings.py and the views in views.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from dotenv import load_dotenv

from jwtguard.django import json_response, requires_auth, requires_scope

load_dotenv(Path(__file__).with_name(".env"))

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="the ping API keeps no sessions",
    MIDDLEWARE=["jwtguard.django.JWTGuardMiddleware"],
    AUTH0_DOMAIN=os.environ.get("AUTH0_DOMAIN"),
    API_IDENTIFIER=os.environ.get("API_IDENTIFIER"),
    JWTGUARD={
        "ISSUER": os.environ.get("JWTGUARD_ISSUER"),
        "AUDIENCE": os.environ.get("JWTGUARD_AUDIENCE"),
        "JWKS_URI": os.environ.get("JWTGUARD_JWKS_URI"),
        "DPOP": os.environ.get("JWTGUARD_DPOP"),
        "DPOP_ORIGINS": os.environ.get("JWTGUARD_DPOP_ORIGINS"),
    },
    LOGGING_CONFIG=None,
)


def not_allowed(view):
    """405 as JSON, as from the other hosts."""
    guarded = require_GET(view)

    def wrapper(request: HttpRequest, *args, **kwargs):
        response = guarded(request, *args, **kwargs)
        if response.status_code == 405:
            answer = json_response(
                {"code": "method_not_allowed", "description": "The method is not allowed for this resource"}, 405
            )
            answer["Allow"] = response["Allow"]
            return answer
        return response

    return wrapper


@not_allowed
def public(request: HttpRequest) -> HttpResponse:
    return json_response({"message": "Hello from a public endpoint! You don't need to be authenticated to see this."})


@not_allowed
@requires_auth
def private(request: HttpRequest) -> HttpResponse:
    return json_response({"message": "Hello from a private endpoint! You need to be authenticated to see this."})


@not_allowed
@requires_scope("read:messages")
def private_scoped(request: HttpRequest) -> HttpResponse:
    return json_response(
        {
            "message": "Hello from a private endpoint! You need to be authenticated and have a scope of "
            "read:messages to see this."
        }
    )


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return json_response({"code": "not_found", "description": "No such resource"}, 404)


urlpatterns = [
    path("api/public", public),
    path("api/private", private),
    path("api/private-scoped", private_scoped),
]
handler404 = not_found

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    address = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '3010')}"
    execute_from_command_line([sys.argv[0], "runserver", "--noreload", "--skip-checks", address])
