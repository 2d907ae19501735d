"""`make bench-report`: every comparison in one run, rounds interleaved, medians of 5.

Writes target/bench/report.md, target/bench/results.json and PNG charts, and prints the
table. Sections:

- C: RS256, PS256, ES256 and EdDSA through the whole pipeline (token cache off) next to
  `openssl speed` for the same primitive; token-cache hits, 1 and 2 threads; libjwt 1.10's
  `jwt_decode` with the PEM key (plus the hand-written claim checks) against jwtguard on the
  same token (typ JWT: libjwt refuses at+jwt).
- Python: jwtguard (hot token, and token cache off) against PyJWT, python-jose, joserfc and
  authlib on the same RS256 token, claim checks on.
- nginx, one worker, wrk: no auth (the same requests, token included, to a location without
  jwtguard), jwtguard with a hot token, jwtguard with all-distinct tokens (more than the token
  cache holds: every request a miss).
- Envoy 1.40, one worker: no auth, jwt_authn (without and with its cache), jwtguard (without
  and with its cache): bindings/envoy/bench/compare.py.
- Flask: the jwtguard ping example against the same API verifying with PyJWT the common way,
  both under gunicorn (one worker, one thread).

    BENCH_SECONDS=5 BENCH_ROUNDS=5 make bench-report   (the defaults: about 6 minutes)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in ("tests/support", "bindings/envoy/tests", "bindings/envoy/bench"):
    sys.path.insert(0, str(ROOT / extra))

from harness import AUDIENCE, MINTED_ISSUER, DevIssuer, free_port, wait_ok  # noqa: E402
from minter import Minter  # noqa: E402

import compare as envoy_compare  # noqa: E402  (bindings/envoy/bench: the Envoy section, and wrk)

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
OUT = ROOT / "target" / "bench"
RELEASE = ROOT / "target" / "release"
DISTINCT_TOKENS = 20_000  # twice the default token cache: a cyclic walk misses every time


# With two cores or more, wrk runs on the first and the server under test on the last, so
# that the two never take each other's core (runs vary much less).
CPUS = sorted(os.sched_getaffinity(0))  # the cores this process may use (a cpuset may limit them)
PIN = len(CPUS) >= 2 and shutil.which("taskset") is not None
CLIENT_CPU = ["taskset", "-c", str(CPUS[0])] if PIN else []
SERVER_CPU = ["taskset", "-c", str(CPUS[-1])] if PIN else []


def median(values):
    return statistics.median(values)


def say(message: str) -> None:
    print(f"bench-report: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- C


def openssl_speed() -> dict[str, float]:
    """Verifications per second of the primitives, from `openssl speed` (1 s each)."""
    out = subprocess.run(["openssl", "speed", "-seconds", "1", "rsa2048", "ecdsap256", "ed25519"],
                         capture_output=True, text=True, check=True).stdout
    rsa = re.search(r"^rsa 2048 bits .*\s([\d.]+)\s*$", out, re.M)
    ecdsa = re.search(r"^\s*256 bits ecdsa \(nistp256\).*\s([\d.]+)\s*$", out, re.M)
    eddsa = re.search(r"^\s*253 bits EdDSA \(Ed25519\).*\s([\d.]+)\s*$", out, re.M)
    if not (rsa and ecdsa and eddsa):
        raise SystemExit(f"bench-report: cannot read openssl speed's output:\n{out}")
    return {"RS256": float(rsa.group(1)), "PS256": float(rsa.group(1)),
            "ES256": float(ecdsa.group(1)), "EdDSA": float(eddsa.group(1))}


def c_inputs(minter: Minter, work: Path) -> list[str]:
    from cryptography.hazmat.primitives import serialization

    now = int(time.time())
    exp = now + 24 * 3600
    lines = [f"{alg} {minter.token(alg, exp=exp)}" for alg in ("RS256", "PS256", "ES256", "EdDSA")]
    lines += [f"hot {minter.token('RS256', exp=exp, jti=f'hot-{i}')}" for i in range(128)]
    lines.append(f"libjwt {minter.token('RS256', headers={'typ': 'JWT'}, exp=exp)}")
    (work / "tokens.txt").write_text("\n".join(lines) + "\n")
    (work / "jwks.json").write_text(json.dumps(minter.jwks))
    public = minter.keys["RS256"][1].public_key()
    (work / "rsa.pem").write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    binary = work / "verify_bench"
    subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'include'}",
                    str(ROOT / "bench" / "c" / "verify_bench.c"), "-o", str(binary), f"-L{RELEASE}",
                    f"-Wl,-rpath,{RELEASE}", "-ljwtguard", "-ljwt", "-pthread"], check=True)
    return [str(binary), str(work / "jwks.json"), str(work / "tokens.txt"), str(work / "rsa.pem"), "1"]


def c_round(command: list[str]) -> dict[str, float]:
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"bench-report: {command[0]} failed:\n{run.stderr}")
    out = run.stdout
    return {name: float(value) for name, value in (line.split() for line in out.splitlines())}


# ----------------------------------------------------------------------------------- Python


def python_contenders(minter: Minter):
    """name -> a zero-argument function verifying the same RS256 token with claim checks."""
    import jwt as pyjwt

    import jwtguard

    token = minter.token("RS256", exp=int(time.time()) + 24 * 3600)
    rsa_jwk = next(k for k in minter.jwks["keys"] if k["kid"] == "rsa")
    public = minter.keys["RS256"][1].public_key()
    hot = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks={"keys": [rsa_jwk]})
    cold = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks={"keys": [rsa_jwk]}, token_cache=0)

    from jose import jwt as jose_jwt
    from joserfc import jwt as joserfc_jwt
    from joserfc.jwk import RSAKey
    with warnings.catch_warnings():  # authlib.jose is deprecated in favour of joserfc; still measured
        warnings.simplefilter("ignore")
        from authlib.jose import JsonWebKey, JsonWebToken

    rfc_key = RSAKey.import_key(rsa_jwk)
    registry = joserfc_jwt.JWTClaimsRegistry(iss={"essential": True, "value": MINTED_ISSUER},
                                             aud={"essential": True, "value": AUDIENCE})

    def joserfc_verify():
        registry.validate(joserfc_jwt.decode(token, rfc_key, algorithms=["RS256"]).claims)

    authlib_key = JsonWebKey.import_key(rsa_jwk)
    authlib_jwt = JsonWebToken(["RS256"])
    options = {"iss": {"essential": True, "value": MINTED_ISSUER}, "aud": {"essential": True, "value": AUDIENCE}}

    def authlib_verify():
        authlib_jwt.decode(token, authlib_key, claims_options=options).validate()

    return {
        "jwtguard (hot token)": lambda: hot.verify(token),
        "jwtguard (token cache off)": lambda: cold.verify(token),
        "PyJWT": lambda: pyjwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE, issuer=MINTED_ISSUER),
        "python-jose": lambda: jose_jwt.decode(token, {"keys": [rsa_jwk]}, algorithms=["RS256"],
                                               audience=AUDIENCE, issuer=MINTED_ISSUER),
        "joserfc": joserfc_verify,
        "authlib": authlib_verify,
    }


def python_rate(verify, seconds: float = 1.0) -> float:
    verify()  # fails loudly if the token is refused
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            verify()
        count += 50
    return count / elapsed


# ------------------------------------------------------------------------------------- HTTP


def wrk(url: str, token: str | None = None, script: Path | None = None, tokens: Path | None = None,
        seconds: float = SECONDS) -> tuple[float, float, float]:
    """One wrk run from wrk's client core: bindings/envoy/bench/compare.py's."""
    envoy_compare.CLIENT_CPU, envoy_compare.CONNECTIONS = CLIENT_CPU, CONNECTIONS
    return envoy_compare.wrk(url, token, seconds, script=script, tokens=tokens)


NGINX_CONF = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/json;
    jwtguard_issuer {issuer};
    jwtguard_audience {audience};
    jwtguard_jwks_uri {jwks_uri};
    jwtguard_snapshot off;
    server {{
        listen 127.0.0.1:{port};
        location = /noauth {{ jwtguard off; root html; try_files /private.json =404; }}
        location = /auth {{ jwtguard on; root html; try_files /private.json =404; }}
    }}
}}
"""

BODY = '{"message":"Hello from a private endpoint! You need to be authenticated to see this."}\n'


def nginx_measure(minter: Minter, work: Path) -> dict[str, list]:
    prefix = work / "nginx"
    (prefix / "modules").mkdir(parents=True)
    (prefix / "logs").mkdir()
    (prefix / "html").mkdir()
    (prefix / "html" / "private.json").write_text(BODY)
    module = Path(os.environ.get("JWTGUARD_NGINX_MODULE", RELEASE / "ngx_http_jwtguard_module.so"))
    (prefix / "modules" / "ngx_http_jwtguard_module.so").symlink_to(module)
    for path in (prefix, prefix / "html", prefix / "html" / "private.json"):
        os.chmod(path, 0o755)
    port = free_port()
    (prefix / "nginx.conf").write_text(NGINX_CONF.format(issuer=MINTED_ISSUER, audience=AUDIENCE,
                                                         jwks_uri=minter.jwks_uri, port=port))
    exp = int(time.time()) + 24 * 3600
    hot = minter.token("RS256", exp=exp, jti="nginx-hot")
    say(f"minting {DISTINCT_TOKENS} distinct RS256 tokens")
    distinct = work / "distinct.txt"
    distinct.write_text("\n".join(minter.token("RS256", exp=exp, jti=f"d-{i}") for i in range(DISTINCT_TOKENS)) + "\n")
    log = open(prefix / "logs" / "stderr.log", "w")
    nginx = subprocess.Popen([*SERVER_CPU, "nginx", "-p", str(prefix), "-c", "nginx.conf"], stdout=log,
                             stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ok(base + "/noauth", None, "nginx")
        except SystemExit:
            log.flush()
            raise SystemExit("bench-report: nginx did not start:\n" + (prefix / "logs" / "stderr.log").read_text())
        wait_ok(base + "/auth", hot, "nginx + jwtguard")
        results: dict[str, list] = {"no auth": [], "jwtguard, hot token": [], "jwtguard, all-distinct tokens": [],
                                    "no auth, the same wrk script": []}
        script = ROOT / "bench" / "tokens.lua"
        for _ in range(ROUNDS):
            # The same requests everywhere (the token too): only the verification differs.
            results["no auth"].append(wrk(base + "/noauth", token=hot))
            results["jwtguard, hot token"].append(wrk(base + "/auth", token=hot))
            results["jwtguard, all-distinct tokens"].append(wrk(base + "/auth", script=script, tokens=distinct))
            # The control: wrk's own cost of a script per request.
            results["no auth, the same wrk script"].append(wrk(base + "/noauth", script=script, tokens=distinct))
        return results
    finally:
        nginx.terminate()
        nginx.wait(timeout=20)
        log.close()


def flask_measure() -> dict[str, list]:
    issuer = DevIssuer()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    env = dict(os.environ, JWTGUARD_ISSUER=issuer.url, JWTGUARD_AUDIENCE=AUDIENCE,
               PYTHONPATH=os.pathsep.join([str(ROOT / "bindings" / "python" / "src"), os.environ.get("PYTHONPATH", "")]))
    apps = {
        "jwtguard (example app)": (ROOT / "bindings" / "python" / "examples" / "flask_api", "server:create_app()"),
        "PyJWT + PyJWKClient": (ROOT / "bench", "flask_pyjwt:create_app()"),
    }
    servers, ports = [], {}
    try:
        for name, (folder, app) in apps.items():
            ports[name] = free_port()
            servers.append(subprocess.Popen(
                [*SERVER_CPU, gunicorn, "--chdir", str(folder), "-w", "1", "--threads", "1", "-k", "gthread", "--keep-alive", "30",
                 "-b", f"127.0.0.1:{ports[name]}", "--log-level", "warning", app],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        token = issuer.token("read:messages")
        for name, port in ports.items():
            wait_ok(f"http://127.0.0.1:{port}/api/private", token, name)
        results: dict[str, list] = {name: [] for name in ports}
        for _ in range(ROUNDS):
            for name, port in ports.items():
                results[name].append(wrk(f"http://127.0.0.1:{port}/api/private", token=token))
        return results
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)
        issuer.stop()


# ----------------------------------------------------------------------------------- report


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    os_name = "Linux"
    if Path("/etc/os-release").exists():
        found = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M)
        os_name = found.group(1) if found else os_name
    return f"{model}, {os.cpu_count()} cores, {os_name}, kernel {platform.release()}"


def http_rows(results: dict[str, list], base_name: str) -> list[dict]:
    # A share is the median of each round's own ratio (the rounds are interleaved, so a ratio
    # within one round is measured under the same machine load).
    base = results[base_name]
    return [{"name": name, "rps": median(r[0] for r in runs), "p50": median(r[1] for r in runs),
             "p99": median(r[2] for r in runs),
             "share": median(r[0] / b[0] for r, b in zip(runs, base)), "runs": runs}
            for name, runs in results.items()]


def charts(data: dict, stamp: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name: str) -> None:
        fig.text(0.99, 0.01, stamp, ha="right", va="bottom", fontsize=7, color="#555555")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(OUT / name, dpi=110)
        plt.close(fig)
        made.append(name)

    c = data["c"]
    algs = ["RS256", "PS256", "ES256", "EdDSA"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(algs))
    ax.bar([x - 0.2 for x in xs], [c["jwtguard"][a] / 1000 for a in algs], 0.4, label="jwtguard, whole verification")
    ax.bar([x + 0.2 for x in xs], [c["openssl"][a] / 1000 for a in algs], 0.4, label="openssl speed, signature only")
    ax.set_xticks(list(xs), algs)
    ax.set_ylabel("thousand verifications/s (1 core)")
    ax.set_title("C: token cache off, against the primitive")
    ax.legend(fontsize=8)
    save(fig, "c-algorithms.png")

    py = data["python"]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(py)
    ax.barh(names[::-1], [py[n] for n in names[::-1]], color=["#2b7bba" if n.startswith("jwtguard") else "#999999"
                                                               for n in names[::-1]])
    ax.set_xscale("log")
    ax.set_xlabel("RS256 verifications/s from Python (log scale)")
    ax.set_title("Python: the same token, claim checks on")
    save(fig, "python.png")

    fig, ax = plt.subplots(figsize=(7, 4.2))
    labels, shares = [], []
    for host in ("nginx", "envoy", "flask"):
        for row in data[host]:
            labels.append(f"{host}: {row['name']}")
            shares.append(row["share"] * 100)
    ax.barh(labels[::-1], shares[::-1], color=["#2b7bba" if "jwtguard" in label else "#999999" for label in labels[::-1]])
    ax.set_xlabel("% of the host's own no-auth req/s (Flask: of jwtguard)")
    ax.set_title("HTTP hosts, wrk, one worker")
    save(fig, "hosts.png")
    return made


def table(data: dict) -> str:
    c, py = data["c"], data["python"]
    r = data["ratios"]
    lines = ["| C (1 core) | verifications/s | against |", "|---|---:|---|"]
    for alg in ("RS256", "PS256", "ES256", "EdDSA"):
        lines.append(f"| {alg}, token cache off | {c['jwtguard'][alg]:,.0f} | "
                     f"{r['openssl'][alg]:.2f}x `openssl speed` ({c['openssl'][alg]:,.0f}) |")
    lines.append(f"| token-cache hit | {c['hit']:,.0f} | {r['hit']:,.0f}x RS256 uncached |")
    lines.append(f"| hits, 2 threads (64 tokens each) | {c['hit_2_threads']:,.0f} | "
                 f"{r['threads']:.2f}x 1 thread ({c['hit_1_thread']:,.0f}) |")
    lines.append(f"| RS256 typ JWT, token cache off | {c['jwtguard_typ_jwt']:,.0f} | "
                 f"{r['libjwt']:.2f}x libjwt 1.10 `jwt_decode` ({c['libjwt']:,.0f}) |")
    lines += ["", "| Python (1 core) | verifications/s | jwtguard hot is | jwtguard uncached is |", "|---|---:|---:|---:|"]
    for name, value in py.items():
        lines.append(f"| {name} | {value:,.0f} | {r['python'][name]['hot']:.1f}x | {r['python'][name]['cold']:.1f}x |")
    for host, title in (("nginx", "nginx 1.22, 1 worker"), ("envoy", "Envoy 1.40, --concurrency 1"),
                        ("flask", "Flask, gunicorn 1 worker 1 thread")):
        of = "of jwtguard" if host == "flask" else "of no auth"
        lines += ["", f"| {title} | req/s | p50 ms | p99 ms | {of} |", "|---|---:|---:|---:|---:|"]
        if host == "nginx":
            of = "of no auth (all-distinct rows: of no auth under the same wrk script)"
            lines[-2] = f"| {title} | req/s | p50 ms | p99 ms | {of} |"
        for row in data[host]:
            lines.append(f"| {row['name']} | {row['rps']:,.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {row['share']:.0%} |")
    return "\n".join(lines)


def targets(data: dict) -> list[tuple[str, bool, str]]:
    c, py, r = data["c"], data["python"], data["ratios"]
    nginx = {row["name"]: row for row in data["nginx"]}
    hot = py["jwtguard (hot token)"]
    return [
        ("nginx hot token >= 0.95x no auth", nginx["jwtguard, hot token"]["share"] >= 0.95,
         f"{nginx['jwtguard, hot token']['share']:.2f}x"),
        ("C token-cache hit >= 5 M/s", c["hit"] >= 5e6, f"{c['hit'] / 1e6:.1f} M/s"),
        ("C hits, 2 threads >= 1.8x 1 thread", r["threads"] >= 1.8, f"{r['threads']:.2f}x"),
        ("RS256 uncached >= 0.88x openssl speed", r["openssl"]["RS256"] >= 0.88, f"{r['openssl']['RS256']:.2f}x"),
        ("Python hot >= 15x PyJWT", r["python"]["PyJWT"]["hot"] >= 15, f"{r['python']['PyJWT']['hot']:.1f}x"),
        ("Python hot >= 250k/s", hot >= 250_000, f"{hot:,.0f}/s"),
        ("Python uncached >= 3x PyJWT", r["python"]["PyJWT"]["cold"] >= 3, f"{r['python']['PyJWT']['cold']:.1f}x"),
        ("Python uncached >= 6x python-jose", r["python"]["python-jose"]["cold"] >= 6,
         f"{r['python']['python-jose']['cold']:.1f}x"),
    ]


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == ["--render"]:  # again from target/bench/results.json, without measuring
        return render(json.loads((OUT / "results.json").read_text()))
    work = Path(tempfile.mkdtemp(prefix="jwtguard-bench-"))
    os.chmod(work, 0o755)
    started = time.monotonic()
    minter = Minter()
    try:
        say("C and openssl speed")
        command = c_inputs(minter, work)
        c_runs, openssl_runs = [], []
        for _ in range(ROUNDS):
            c_runs.append(c_round(command))
            openssl_runs.append(openssl_speed())
        c = {name: median(r[name] for r in c_runs) for name in c_runs[0]}
        raw = {"c_runs": c_runs, "openssl_runs": openssl_runs}
        data = {"c": {
            "jwtguard": {alg: c[alg] for alg in ("RS256", "PS256", "ES256", "EdDSA")},
            "openssl": {alg: median(r[alg] for r in openssl_runs) for alg in openssl_runs[0]},
            **{k: c[k] for k in ("hit", "hit_1_thread", "hit_2_threads", "jwtguard_typ_jwt", "libjwt")},
        }}

        say("Python")
        contenders = python_contenders(minter)
        py_runs: dict[str, list[float]] = {name: [] for name in contenders}
        cpus = os.sched_getaffinity(0)
        if PIN:
            os.sched_setaffinity(0, {CPUS[-1]})
        try:
            for _ in range(ROUNDS):
                for name, verify in contenders.items():
                    py_runs[name].append(python_rate(verify))
        finally:
            os.sched_setaffinity(0, cpus)
        data["python"] = {name: median(runs) for name, runs in py_runs.items()}
        raw["python_runs"] = py_runs

        say("nginx")
        data["nginx"] = http_rows(nginx_measure(minter, work), "no auth")
        say("Envoy")
        envoy_compare.CONNECTIONS = CONNECTIONS
        envoy_compare.CLIENT_CPU, envoy_compare.SERVER_CPU = CLIENT_CPU, SERVER_CPU
        data["envoy"] = http_rows(envoy_compare.measure(SECONDS, ROUNDS), "no auth")
        say("Flask")
        data["flask"] = http_rows(flask_measure(), "jwtguard (example app)")
    finally:
        minter.close()
        shutil.rmtree(work, ignore_errors=True)

    today = datetime.date.today().isoformat()
    data["meta"] = {"date": today, "machine": machine(), "seconds": SECONDS, "rounds": ROUNDS,
                    "connections": CONNECTIONS, "pinned": PIN, "runtime_s": round(time.monotonic() - started)}
    data["raw"] = raw
    return render(data)


def paired_ratios(data: dict) -> dict:
    """Ratios as medians of each round's own ratio (rounds are interleaved)."""
    raw = data["raw"]
    c_runs, ssl_runs, py_runs = raw["c_runs"], raw["openssl_runs"], raw["python_runs"]
    hot, cold = py_runs["jwtguard (hot token)"], py_runs["jwtguard (token cache off)"]
    return {
        "openssl": {alg: median(c[alg] / o[alg] for c, o in zip(c_runs, ssl_runs)) for alg in ssl_runs[0]},
        "threads": median(c["hit_2_threads"] / c["hit_1_thread"] for c in c_runs),
        "hit": median(c["hit"] / c["RS256"] for c in c_runs),
        "libjwt": median(c["jwtguard_typ_jwt"] / c["libjwt"] for c in c_runs),
        "python": {name: {"hot": median(h / x for h, x in zip(hot, runs)),
                          "cold": median(k / x for k, x in zip(cold, runs))}
                   for name, runs in py_runs.items()},
    }


def render(data: dict) -> int:
    """Write report.md, results.json and the charts from measured data, and print the report."""
    data["ratios"] = paired_ratios(data)
    for host in ("nginx", "envoy", "flask"):  # the first row is each table's base...
        rows = {row["name"]: row for row in data[host]}
        for row in data[host]:
            # ...except that runs with wrk's per-request script compare with no auth under
            # the same script (the script costs wrk time per request)
            scripted = "all-distinct" in row["name"] and "no auth, the same wrk script" in rows
            base = rows["no auth, the same wrk script"]["runs"] if scripted else data[host][0]["runs"]
            row["share"] = median(r[0] / b[0] for r, b in zip(row["runs"], base))
    (OUT / "results.json").write_text(json.dumps(data, indent=2))  # first: a chart failure keeps it
    stamp = f"{data['meta']['date']}, {data['meta']['machine']}"
    made = charts(data, stamp)
    text = table(data)
    checks = targets(data)
    check_lines = "\n".join(f"- {'met' if ok else 'NOT met'}: {name} ({value})" for name, ok, value in checks)
    pinned = "wrk and the server pinned to cores of their own; " if data["meta"].get("pinned") else ""
    meta = data["meta"]
    report = (f"# jwtguard benchmark report\n\n{stamp}. Medians of {meta['rounds']} interleaved rounds (a ratio: "
              f"the median of each round's own ratio); wrk -t1 -c{meta['connections']}, {meta['seconds']:g} s per run; "
              f"{pinned}the report took {meta['runtime_s']} s.\n\n"
              f"{text}\n\nTargets (issue 10):\n\n{check_lines}\n\n"
              + "".join(f"![{name}]({name})\n" for name in made))
    (OUT / "report.md").write_text(report)
    (OUT / "results.json").write_text(json.dumps(data, indent=2))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
