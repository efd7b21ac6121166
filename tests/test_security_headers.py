"""Security headers and defaults (issue 6) checked on a real server.

A Content-Security-Policy whose script-src is 'self' without unsafe-inline (and a page with no inline
script or event-handler attribute, so that policy does not break it); nosniff and a Referrer-Policy on the
page and on API answers, errors included; uploaded files served only as image/png; no CORS headers unless
`CONVLENS_CORS_ORIGINS` names the origin; the server binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from live_server import REPO, LiveServer
from PIL import Image

FOREIGN = "http://evil.example"
SCHOOL = "http://convlens.school.example"
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


def parse_csp(header: str) -> dict[str, list[str]]:
    policy: dict[str, list[str]] = {}
    for directive in header.split(";"):
        words = directive.split()
        if words:
            policy[words[0].lower()] = words[1:]
    return policy


class ScriptAudit(HTMLParser):
    """Collects inline scripts, event-handler attributes, javascript: URLs and external script sources."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.sources: list[str] = []
        self._inline: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event-handler attribute")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            if values.get("src"):
                self.sources.append(str(values["src"]))
            elif (values.get("type") or "").lower() not in DATA_SCRIPT_TYPES:
                self._inline = ""

    def handle_data(self, data: str) -> None:
        if self._inline is not None:
            self._inline += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._inline is not None:
            if self._inline.strip():
                self.problems.append(f"inline <script>: {self._inline.strip()[:80]!r}")
            self._inline = None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(env={"CONVLENS_STORE_DIR": str(tmp_path_factory.mktemp("store"))}) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with server.client() as http:
        yield http


def assert_hardened(response) -> None:
    """nosniff, a Referrer-Policy, a CSP without unsafe-inline scripts, and no CORS header."""
    assert response.headers.get("x-content-type-options") == "nosniff", dict(response.headers)
    assert response.headers.get("referrer-policy"), dict(response.headers)
    policy = parse_csp(response.headers.get("content-security-policy", ""))
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts is not None and "'unsafe-inline'" not in scripts, policy
    assert "access-control-allow-origin" not in response.headers


def test_page_has_a_strict_script_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_hardened(page)
    policy = parse_csp(page.headers["content-security-policy"])
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts is not None, policy
    assert "'self'" in scripts
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"} & set(scripts), scripts
    assert policy.get("object-src", policy.get("default-src")) in (["'none'"], ["'self'"]), policy


def test_page_has_no_inline_script_and_its_modules_are_served_as_javascript(client):
    audit = ScriptAudit()
    audit.feed(client.get("/").text)
    assert audit.problems == []
    assert audit.sources, "the page loads no script"
    for src in audit.sources:
        assert not re.match(r"(https?:)?//", src), f"a script from another origin: {src}"
        script = client.get(src)
        assert script.status_code == 200, src
        assert script.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
        assert script.headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("method, path, body, status", [
    ("GET", "/healthz", None, 200),
    ("GET", "/api/kernels", None, 200),
    ("POST", "/api/conv", {"image": "mnist:0", "weight": "sobel_x", "padding": 1}, 200),
    ("POST", "/api/conv", {"image": "mnist:0", "weight": "sobel_x", "stride": 99}, 422),
    ("GET", "/api/images/0000000000000000000000000000000000000000000000000000000000000000", None, 404),
    ("GET", "/api/images/..%2F..%2Fetc%2Fpasswd.png", None, 404),
])
def test_api_answers_carry_the_headers(client, method, path, body, status):
    response = client.request(method, path, json=body)
    assert response.status_code == status, response.text[:300]
    assert_hardened(response)
    if status != 200 or path.startswith("/api"):
        assert response.headers["content-type"].startswith("application/json")


def test_uploaded_images_are_served_only_as_png(client):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(buf, "GIF")
    gif = buf.getvalue() + b"<script>alert(1)</script>"
    response = client.post("/api/images", files={"file": ("x.html", gif, "text/html")})
    assert response.status_code in (200, 201), response.text
    image = client.get(f"/api/images/{response.json()['id']}.png")
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n") and b"<script" not in image.content
    assert_hardened(image)
    assert "filename" not in image.headers.get("content-disposition", "")
    builtin = client.get("/api/images/mnist:0.png")
    assert builtin.headers["content-type"] == "image/png"
    assert_hardened(builtin)


def test_no_cors_by_default(client):
    simple = client.get("/api/kernels", headers={"Origin": FOREIGN})
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options("/api/conv", headers={
        "Origin": FOREIGN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-methods" not in preflight.headers


def test_cors_only_for_configured_origins(tmp_path):
    env = {"CONVLENS_STORE_DIR": str(tmp_path), "CONVLENS_CORS_ORIGINS": f"{SCHOOL}, http://other.example"}
    with LiveServer(env=env) as live, live.client() as http:
        allowed = http.get("/api/kernels", headers={"Origin": SCHOOL})
        assert allowed.headers.get("access-control-allow-origin") == SCHOOL
        foreign = http.get("/api/kernels", headers={"Origin": FOREIGN})
        assert "access-control-allow-origin" not in foreign.headers


def test_server_binds_localhost_unless_in_the_container():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^HOST\s*\?=\s*127\.0\.0\.1\s*$", makefile, re.M), "make run must bind 127.0.0.1"
    for path in [*Path(REPO / "app").rglob("*.py"), REPO / "Makefile"]:
        assert "0.0.0.0" not in path.read_text(), f"{path} binds all interfaces"
    assert "--host 0.0.0.0" in (REPO / "Dockerfile").read_text()
