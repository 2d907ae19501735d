"""The Auth0 "Python API" quickstart's ping API on FastAPI, with jwtguard.

    GET /api/public          no token needed
    GET /api/private         a valid access token
    GET /api/private-scoped  a valid access token with the scope read:messages

Configured from the environment or a .env file beside this script: AUTH0_DOMAIN and
API_IDENTIFIER (a real Auth0 tenant), or JWTGUARD_ISSUER, JWTGUARD_AUDIENCE and optionally
JWTGUARD_JWKS_URI (any OpenID issuer, e.g. `jwtguard dev-issuer`); PORT (default 3010).
Run with `python server.py` (uvicorn); /docs shows the routes with their lock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict

import uvicorn
from dotenv import load_dotenv
from fastapi import Depends, FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from jwtguard.fastapi import JSONResponse, JWTGuard

load_dotenv(Path(__file__).with_name(".env"))

auth = JWTGuard()  # AUTH0_DOMAIN/API_IDENTIFIER or JWTGUARD_* from the environment
# Answers written as the other hosts write them (the same bytes as the Flask example's).
app = FastAPI(title="ping API", default_response_class=JSONResponse)
auth.install(app)
app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_headers=["Content-Type", "Authorization"])


@app.get("/api/public")
async def public() -> Dict[str, str]:
    return {"message": "Hello from a public endpoint! You don't need to be authenticated to see this."}


@app.get("/api/private")
async def private(claims: Dict[str, Any] = Depends(auth)) -> Dict[str, str]:
    return {"message": "Hello from a private endpoint! You need to be authenticated to see this."}


@app.get("/api/private-scoped")
async def private_scoped(claims: Dict[str, Any] = Security(auth, scopes=["read:messages"])) -> Dict[str, str]:
    return {
        "message": "Hello from a private endpoint! You need to be authenticated and have a scope of "
        "read:messages to see this."
    }


# Every answer is JSON in the same shape, as from the Flask example, the C server and nginx.
@app.exception_handler(StarletteHTTPException)
async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    if error.status_code == 404:
        return JSONResponse({"code": "not_found", "description": "No such resource"}, status_code=404)
    if error.status_code == 405:
        return JSONResponse(
            {"code": "method_not_allowed", "description": "The method is not allowed for this resource"},
            status_code=405,
            headers=error.headers,
        )
    return JSONResponse({"code": "error", "description": str(error.detail)}, status_code=error.status_code,
                        headers=error.headers)


if __name__ == "__main__":
    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3010")),
                log_level="warning")
