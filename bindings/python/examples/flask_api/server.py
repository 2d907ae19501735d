"""The Auth0 "Python API" quickstart's ping API, on jwtguard.

    GET /api/public          no token needed
    GET /api/private         a valid access token
    GET /api/private-scoped  a valid access token with the scope read:messages

Configured from the environment or a .env file beside this script: AUTH0_DOMAIN and
API_IDENTIFIER (a real Auth0 tenant), or JWTGUARD_ISSUER, JWTGUARD_AUDIENCE and optionally
JWTGUARD_JWKS_URI (any OpenID issuer, e.g. `jwtguard dev-issuer`); PORT (default 3010).
A missing scope answers 403 with the quickstart's code "Unauthorized".
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask, jsonify
from flask_cors import cross_origin

from jwtguard.flask import JWTGuard, requires_auth, requires_scope

load_dotenv(Path(__file__).with_name(".env"))

CONFIG_KEYS = ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_ISSUER", "JWTGUARD_AUDIENCE", "JWTGUARD_JWKS_URI", "JWTGUARD_DPOP",
               "JWTGUARD_DPOP_ORIGINS")


def create_app() -> Flask:
    app = Flask(__name__)
    for key in CONFIG_KEYS:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    JWTGuard(app)

    @app.route("/api/public")
    @cross_origin(headers=["Content-Type", "Authorization"])
    def public():
        return jsonify(message="Hello from a public endpoint! You don't need to be authenticated to see this.")

    @app.route("/api/private")
    @cross_origin(headers=["Content-Type", "Authorization"])
    @requires_auth
    def private():
        return jsonify(message="Hello from a private endpoint! You need to be authenticated to see this.")

    @app.route("/api/private-scoped")
    @cross_origin(headers=["Content-Type", "Authorization"])
    @requires_scope("read:messages")
    def private_scoped():
        return jsonify(
            message="Hello from a private endpoint! You need to be authenticated and have a scope of "
            "read:messages to see this."
        )

    # Every answer is JSON, as from the C server and nginx.
    @app.errorhandler(404)
    def not_found(_error):
        return jsonify(code="not_found", description="No such resource"), 404

    @app.errorhandler(405)
    def not_allowed(_error):
        return jsonify(code="method_not_allowed", description="The method is not allowed for this resource"), 405

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3010")))
