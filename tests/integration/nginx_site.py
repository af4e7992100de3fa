"""The shipped nginx site (deploy/nginx/facility.conf) made runnable by a test: listening on
free loopback ports instead of 80/443, with a throwaway certificate and one API upstream, under
a main configuration whose pid, logs and temporary files are in the test's directory.

Only those lines change, each found exactly once (or the test fails, naming it), so whatever
else the site says — headers, buffering, timeouts — is what runs. One line is added: the
live-updates location ignores the API's own `X-Accel-Buffering: no`, so that an event
arriving unbuffered shows the site's `proxy_buffering off` at work, not only the API's header.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "facility.conf"
UPSTREAM_SERVERS = re.compile(r"^(\s*)server 127\.0\.0\.1:\d+[^;]*;\n(?:\s*server [^;]*;\n)*", re.M)


@dataclass(frozen=True, slots=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(openssl: str, workdir: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for two days."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Certificate(cert, key)


def _replace_once(text: str, old: str, new: str) -> str:
    count = text.count(old)
    assert count == 1, f"{SITE.name}: expected {old!r} once, found it {count} times"
    return text.replace(old, new)


def site_for_test(
    text: str, *, https_port: int, http_port: int, api_port: int, tls: Certificate
) -> str:
    text = _replace_once(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _replace_once(text, "    listen [::]:443 ssl http2;\n", "")
    text = _replace_once(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace_once(text, "    listen [::]:80;\n", "")
    text = _replace_once(text, "/etc/facility/tls/fullchain.pem", str(tls.cert))
    text = _replace_once(text, "/etc/facility/tls/privkey.pem", str(tls.key))
    text = _replace_once(
        text,
        "location = /api/v1/events {\n",
        "location = /api/v1/events {\n        proxy_ignore_headers X-Accel-Buffering;\n",
    )
    text, found = UPSTREAM_SERVERS.subn(rf"\1server 127.0.0.1:{api_port};\n", text)
    assert found == 1, f"{SITE.name}: no upstream server lines on 127.0.0.1"
    return text


def write_config(workdir: Path, site_text: str) -> Path:
    """The main configuration around the site; nginx's own files stay in `workdir`."""
    (workdir / "facility.conf").write_text(site_text)
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy",
                                                             "fastcgi", "uwsgi", "scgi")
    )  # fmt: skip
    # As root, workers would run as `nobody`, who cannot enter the test's private directory.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = workdir / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {workdir / 'access.log'};\n{temp}\n"
        f"    include {workdir / 'facility.conf'};\n}}\n"
    )
    return main


def nginx_argv(nginx: str, main: Path, *extra: str) -> list[str]:
    return [nginx, "-p", str(main.parent), "-c", str(main), "-e", str(main.parent / "error.log"),
            *extra]  # fmt: skip
