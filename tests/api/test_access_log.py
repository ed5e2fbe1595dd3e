"""`clm serve` keeps secrets out of its access log: link tokens in paths and personal look-ups in
query strings are masked, while the request line, status and harmless parameters stay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from clm.core.access_log import redact_target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/s/Zx9-survey_TOKEN", "/s/***"),
        ("/u/unsubTOKEN?lang=zh", "/u/***?lang=zh"),
        ("/t/o/openTOKEN", "/t/o/***"),
        ("/t/c/clickTOKEN?u=https%3A%2F%2Fshop.example.com&s=sig", "/t/c/***?u=***&s=***"),
        ("/api/v1/customers?email=ann%40example.com&limit=5", "/api/v1/customers?email=***&limit=5"),
        ("/api/v1/customers?PHONE=%2B8613800138000", "/api/v1/customers?PHONE=***"),
        ("/api/v1/customers?ph%6Fne=138", "/api/v1/customers?ph%6Fne=***"),  # an encoded name too
        ("/api/v1/segments/s/members?limit=5", "/api/v1/segments/s/members?limit=5"),
        ("/surveys/s/x", "/surveys/s/x"),  # only the token pages' own paths
    ],
)
def test_targets_are_masked(target, logged):
    assert redact_target(target) == logged


def test_the_running_server_logs_no_tokens_or_lookups(db_url, personas):
    port = _free_port()
    env = {**os.environ, "CLM_DATABASE_URL": db_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "clm.cli", "--db", db_url, "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the machine may be busy: up to a minute to start
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[0]
                time.sleep(0.1)
        secrets = {
            "/s/SurveyTok3n-abc": 404,
            "/u/UnsubTok3n-def": 404,
            "/t/o/OpenTok3n-ghi": 200,
            "/t/c/ClickTok3n-jkl?u=https://shop.example.com/p&s=SigXYZ": 404,
        }
        for path, status in secrets.items():
            assert httpx.get(base + path).status_code == status
        lookup = httpx.get(
            f"{base}/api/v1/customers",
            params={"email": "ann.lee@example.com", "phone": "13800138000", "limit": 7},
            headers=personas.headers("vic"),
        )
        assert lookup.status_code == 200
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=60)[0]
    for secret in ("SurveyTok3n", "UnsubTok3n", "OpenTok3n", "ClickTok3n", "SigXYZ", "shop.example.com",
                   "ann.lee", "example.com", "13800138000"):  # fmt: skip
        assert secret not in output, secret
    assert '"GET /s/*** HTTP/1.1" 404' in output
    assert '"GET /u/*** HTTP/1.1" 404' in output
    assert '"GET /t/o/*** HTTP/1.1" 200' in output
    assert '"GET /t/c/***?u=***&s=*** HTTP/1.1" 404' in output
    assert '"GET /api/v1/customers?email=***&phone=***&limit=7 HTTP/1.1" 200' in output
