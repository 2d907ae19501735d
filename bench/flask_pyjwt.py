"""The ping API's /api/private verified the way a Flask app commonly does it without jwtguard:
PyJWT with PyJWKClient (keys fetched once and cached), checking signature, exp, iss and aud.
The baseline `make bench-report` runs beside the jwtguard Flask example, under the same server.

    JWTGUARD_ISSUER=... JWTGUARD_AUDIENCE=... gunicorn 'flask_pyjwt:create_app()'
"""

from __future__ import annotations

import os

import jwt
from flask import Flask, jsonify, request


def create_app() -> Flask:
    issuer = os.environ["JWTGUARD_ISSUER"]
    audience = os.environ["JWTGUARD_AUDIENCE"]
    keys = jwt.PyJWKClient(issuer + ".well-known/jwks.json", cache_keys=True)
    app = Flask(__name__)

    def refuse(code: str, description: str, status: int = 401):
        return jsonify(code=code, description=description), status

    @app.route("/api/private")
    def private():
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return refuse("invalid_header", "Authorization header must be a Bearer token")
        try:
            key = keys.get_signing_key_from_jwt(parts[1])
            jwt.decode(parts[1], key.key, algorithms=["RS256"], audience=audience, issuer=issuer)
        except jwt.PyJWTError as error:
            return refuse("invalid_token", str(error))
        return jsonify(message="Hello from a private endpoint! You need to be authenticated to see this.")

    return app
