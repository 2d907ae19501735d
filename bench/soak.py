"""`make soak SOAK_SECONDS=N` (default 600): nginx (2 workers, the module), the C ping server
and Envoy (the module) under wrk load with valid tokens while the dev issuer rotates its key
every 30 s, each fault mode is injected in turn, and nginx reloads every 60 s.

Time runs in 5 s segments. Each 30 s cycle: a rotation (the new key signs at once, the one
before stays published: `{"keep": 1}`) and fresh tokens from it at 0 s (plus an nginx reload
every other cycle), a fault of both the JWKS and the discovery endpoints from 10 s to 25 s
(the next mode each cycle), healthy again to 30 s. Every token sent is valid when sent, so
every answer must be 200: a 401/403 is a refused valid token, counted per host. After each
segment: req/s per host, RSS and open fds of the nginx workers, the ping server and Envoy.

Writes target/soak/results.json (after every segment, so a cut run keeps its data) and
target/soak/soak.png (req/s and RSS over time); prints a summary. Fails if any valid token was
refused, any 5xx or socket error, or a host died. Not part of `make test`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bindings" / "envoy" / "bench"))

import compare as envoy  # noqa: E402  (its config builders and the Envoy binary)
from harness import AUDIENCE, PING_SERVER, DevIssuer, free_port, http, wait_ok  # noqa: E402

spec = importlib.util.spec_from_file_location("nginx_conftest", ROOT / "bindings" / "nginx" / "tests" / "conftest.py")
nginx_suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nginx_suite)

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
SEGMENT = 5
CYCLE = 30
OUT = ROOT / "target" / "soak"
SCRIPT = ROOT / "bench" / "soak.lua"
FAULTS = [
    {"mode": "status", "status": 500},
    {"mode": "drop"},
    {"mode": "garbage"},
    {"mode": "delay", "ms": 3000},
    {"mode": "oversize"},
    {"mode": "status", "status": 503},
]
SCOPES = ["read:messages", "", "read:messages write:messages", "admin", "read:messages admin"]


def post(issuer: DevIssuer, path: str, body: dict) -> dict:
    status, _, answer = http("POST", issuer.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status == 200, answer
    return answer


def fault(issuer: DevIssuer, spec: dict) -> None:
    post(issuer, "admin/fault", spec)
    post(issuer, "admin/fault", {**spec, "endpoint": "discovery"})


def fetches(issuer: DevIssuer) -> int:
    """Requests the issuer has had for its JWKS and its discovery document (faults included)."""
    stats = http("GET", issuer.url + "admin/stats")[2]
    return stats["jwks_requests"] + stats["discovery_requests"]


def probe(urls: dict[str, str], token: str) -> dict[str, int]:
    """Each host's status for `token` under a fresh unknown kid (same claims and signature)."""
    header, rest = token.split(".", 1)
    claims = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    claims["kid"] = f"unknown-{uuid.uuid4().hex[:12]}"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + rest

    def status(url: str) -> int:
        try:
            return http("GET", url, headers={"Authorization": f"Bearer {forged}"})[0]
        except OSError:
            return 0

    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        return dict(zip(urls, pool.map(status, urls.values())))


def process_figures(pids: list[int]) -> tuple[int, int]:
    """(RSS kB, open fds) summed over pids."""
    rss = fds = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, AttributeError):
            pass
    return rss, fds


def start_wrk(url: str, tokens: Path) -> subprocess.Popen:
    return subprocess.Popen(["wrk", "-t", "1", "-c", "4", "-d", f"{SEGMENT}s", "-s", str(SCRIPT), url, "--", str(tokens)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(process: subprocess.Popen) -> dict:
    """One wrk run's figures. `broken` says why a run cannot be trusted: wrk failed, or its
    status counts (from bench/soak.lua) do not add up to the requests it made."""
    out = process.communicate()[0]
    statuses = {int(code): int(n) for code, n in re.findall(r"^STATUS (\d+) (\d+)$", out, re.M)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()))) if errors else {}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    made = re.search(r"(\d+) requests in", out)
    broken = None
    if process.returncode != 0 or not rate or not made:
        broken = f"wrk failed (exit {process.returncode}): {out[-1500:]}"
    elif sum(statuses.values()) != int(made.group(1)):
        broken = f"{sum(statuses.values())} statuses counted for {made.group(1)} requests: {out[-1500:]}"
    refusals = re.findall(r"^REFUSED (.*)$", out, re.M)
    return {"rps": float(rate.group(1)) if rate else 0.0, "statuses": statuses, "refusals": refusals,
            "socket_errors": sum(errors.values()), "read_errors": errors.get("read", 0), "broken": broken}


def chart(results: dict) -> Path | None:
    try:
        import matplotlib
    except ImportError:
        print("soak: matplotlib is missing (scripts/setup-bench.sh installs it); no chart")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segments = results["segments"]
    t = [s["t"] for s in segments]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for host in results["hosts"]:
        top.plot(t, [s["hosts"][host]["rps"] for s in segments], label=host)
        bottom.plot(t, [s["hosts"][host]["rss_kb"] / 1024 for s in segments], label=host)
    top.set_ylabel("requests/s (valid tokens)")
    bottom.set_ylabel("RSS MiB (nginx: both workers)")
    bottom.set_xlabel("seconds")
    for event in results["events"]:
        if event["what"] == "reload":
            top.axvline(event["t"], color="grey", alpha=0.3, linewidth=0.8)
    top.legend()
    top.set_title(f"jwtguard soak: {results['seconds']} s, key rotation every {CYCLE} s, "
                  "a fault each cycle, nginx reload every 60 s (grey)")
    fig.tight_layout()
    path = OUT / "soak.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="jwtguard-soak-"))
    os.chmod(work, 0o777)
    issuer = DevIssuer()
    processes: list[subprocess.Popen] = []
    nginx = None
    try:
        ports = {"nginx": free_port(), "C": free_port(), "Envoy": free_port()}
        nginx = nginx_suite.Nginx(work / "nginx", nginx_suite.example_config(issuer.url, ports["nginx"]), ports["nginx"])
        ping = subprocess.Popen([str(PING_SERVER)], env=dict(os.environ, PORT=str(ports["C"]), JWTGUARD_ISSUER=issuer.url,
                                                              JWTGUARD_AUDIENCE=AUDIENCE),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(ping)
        admin = free_port()
        issuer_port = int(issuer.url.rsplit(":", 1)[1].strip("/"))
        config = {"static_resources": {"listeners": [envoy.listener("jwtguard", ports["Envoy"], [envoy.jwtguard(issuer)])],
                                       "clusters": [envoy.upstream_cluster("issuer", issuer_port)]},
                  "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}}}
        (work / "envoy.json").write_text(json.dumps(config))
        proxy = subprocess.Popen([envoy.envoy_binary(), "-c", str(work / "envoy.json"), "--concurrency", "2",
                                  "-l", "warning", "--base-id", str(admin)],
                                 env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=str(ROOT / "target" / "release")),
                                 stdout=open(work / "envoy.log", "w"), stderr=subprocess.STDOUT)
        processes.append(proxy)
        urls = {host: f"http://127.0.0.1:{port}/api/private" for host, port in ports.items()}
        first = issuer.token()
        for host, url in urls.items():
            wait_ok(url, first, host)

        def pids(host: str) -> list[int]:
            return {"nginx": nginx.workers, "C": lambda: [ping.pid], "Envoy": lambda: [proxy.pid]}[host]()

        results = {"seconds": SECONDS, "hosts": list(urls), "segments": [], "events": [],
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        started = time.monotonic()
        tokens = work / "tokens.txt"
        cycle = -1
        for index in range(SECONDS // SEGMENT):
            t = index * SEGMENT
            phase = t % CYCLE
            reload = False
            if phase == 0:
                cycle += 1
                kid = post(issuer, "admin/rotate", {"keep": 1})["kid"]
                valid = [issuer.token(scope) for scope in SCOPES * 4]
                tokens.write_text("\n".join(valid) + "\n")
                results["events"].append({"t": t, "what": "rotate", "kid": kid})
            elif phase == 10:
                mode = FAULTS[cycle % len(FAULTS)]
                fault(issuer, mode)
                window = fetches(issuer)
                results["events"].append({"t": t, "what": "fault", "fault": mode})
            elif phase == 15 and cycle % 2 == 1:
                # Mid-fault: the new workers start from the snapshot while the issuer fails.
                nginx.reload()
                reload = True
                results["events"].append({"t": t, "what": "reload"})
            elif phase == 25:
                fault(issuer, {"mode": "off"})
                # The hosts asked the failing issuer (their refresh, the reloaded workers, the
                # probes below): otherwise the window tested nothing.
                results["events"].append({"t": t, "what": "fault off", "issuer_requests": fetches(issuer) - window})
            runs = {host: start_wrk(url, tokens) for host, url in urls.items()}
            segment = {"t": round(time.monotonic() - started, 1), "hosts": {}, "reload": reload}
            if 10 <= phase < 25:
                # A token naming a kid nobody published makes each host try the failing issuer
                # (each probe a new kid); it must be refused, never a 5xx but 503, never let in.
                segment["probes"] = probe(urls, valid[0])
            for host, run in runs.items():
                result = wrk_result(run)
                result["rss_kb"], result["fds"] = process_figures(pids(host))
                segment["hosts"][host] = result
            segment["alive"] = {"nginx": nginx.process.poll() is None, "C": ping.poll() is None,
                                "Envoy": proxy.poll() is None}
            results["segments"].append(segment)
            (OUT / "results.json").write_text(json.dumps(results, indent=1))
            line = "  ".join(f"{h} {r['rps']:8.0f}/s {r['rss_kb'] / 1024:6.1f} MiB {r['fds']:3d} fds"
                             for h, r in segment["hosts"].items())
            print(f"soak: {t:5d} s  {line}", flush=True)
            if not all(segment["alive"].values()):
                print(f"soak: a host died: {segment['alive']}")
                break
        results["nginx_log"] = nginx.error_log()[-100_000:]
        return summary(results)
    finally:
        if issuer.process.poll() is None:
            fault(issuer, {"mode": "off"})
        for process in processes:
            process.kill()
            process.wait()
        if nginx:
            nginx.close()
        issuer.stop()


def summary(results: dict) -> int:
    segments = results["segments"]
    rows, failed = [], False
    for host in results["hosts"]:
        runs = [s["hosts"][host] for s in segments]
        answered = sum(sum(r["statuses"].values()) for r in runs)
        refused = sum(n for r in runs for code, n in r["statuses"].items() if code in (400, 401, 403))
        server = sum(n for r in runs for code, n in r["statuses"].items() if code >= 500)
        other = sum(n for r in runs for code, n in r["statuses"].items() if code not in (200, 400, 401, 403) and code < 500)
        # A reload closes the old workers' idle keep-alive connections (nginx's graceful
        # shutdown): wrk counts a read error when it reuses one, at most one per connection
        # (-c 4). Those are counted apart; any other socket error fails the soak.
        at_reload = sum(min(s["hosts"][host]["read_errors"], 4) for s in segments if s["reload"] and host == "nginx")
        sockets = sum(r["socket_errors"] for r in runs) - at_reload
        broken = [r["broken"] for r in runs if r["broken"]]
        probes = [s["probes"][host] for s in segments if "probes" in s]
        let_in = sum(status not in (401, 503) for status in probes)
        failed |= bool(broken or let_in)
        for reason in broken[:3]:
            print(f"soak: {host}: {reason}")
        whys = [(s["t"], why) for s in segments for why in s["hosts"][host].get("refusals", [])]
        for t, why in whys[:10]:
            print(f"soak: {host} at {t} s answered {why}")
        tenth = max(1, len(runs) // 10)
        rss_start = sorted(r["rss_kb"] for r in runs[:tenth])[tenth // 2] / 1024
        rss_end = sorted(r["rss_kb"] for r in runs[-tenth:])[tenth // 2] / 1024
        fds = (runs[0]["fds"], max(r["fds"] for r in runs), runs[-1]["fds"])
        rps = sorted(r["rps"] for r in runs)[len(runs) // 2]
        failed |= bool(refused or server or other or sockets or answered == 0)
        rows.append(f"| {host} | {answered:,} | {refused} | {server} | {sockets} ({at_reload} at reloads) | "
                    f"{len(probes) - let_in}/{len(probes)} | {rps:,.0f} | "
                    f"{rss_start:.1f} → {rss_end:.1f} | {fds[0]} / {fds[1]} / {fds[2]} |")
        results.setdefault("summary", {})[host] = {
            "answered": answered, "refused_valid": refused, "server_errors": server, "other": other,
            "socket_errors": sockets, "socket_errors_at_reloads": at_reload, "broken_runs": len(broken),
            "unknown_kid_probes": len(probes), "probes_not_refused": let_in, "median_rps": rps, "rss_mib_start": rss_start, "rss_mib_end": rss_end,
            "fds_first_max_last": fds}
    alive = all(segments[-1]["alive"].values()) if segments else False
    failed |= not alive or len(segments) < results["seconds"] // SEGMENT
    quiet = [e for e in results["events"] if e["what"] == "fault off" and e["issuer_requests"] == 0]
    if quiet:
        print(f"soak: fault windows in which no host asked the issuer: {quiet}")
    crashed = "exited on signal" in results.get("nginx_log", "")
    if crashed:
        print("soak: an nginx worker crashed (error log: exited on signal)")
    failed |= bool(quiet) or crashed
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    picture = chart(results)
    rotations = sum(e["what"] == "rotate" for e in results["events"])
    reloads = sum(e["what"] == "reload" for e in results["events"])
    faults = sum(e["what"] == "fault" for e in results["events"])
    table = "\n".join([
        f"soak: {results['seconds']} s from {results['started']}: {rotations} rotations, {faults} faults, {reloads} nginx reloads",
        "",
        "| host | answered | refused valid | 5xx | socket errors (closed by a reload) | unknown-kid probes refused | median req/s | RSS MiB (first → last tenth) | fds first / max / last |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    (OUT / "summary.md").write_text(table + "\n")
    print(table)
    print(f"soak: results in {OUT / 'results.json'}" + (f", chart {picture}" if picture else ""))
    if failed:
        print("soak: FAILED (a valid token refused, a server error, a socket error or a host down)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
