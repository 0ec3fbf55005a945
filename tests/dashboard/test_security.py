"""Hostile input against the dashboard: forged cookies and tokens, revoked tokens, CSRF,
cross-site posts, brute force, path traversal and SQL injection."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from seed import seed

from conftest import INTERVAL, T0, Clock, client, csrf_of, login
from predis.dashboard import History
from predis.dashboard.app import SESSION_COOKIE, build_app
from predis.dashboard.auth import LoginRateLimiter, SessionStore
from predis.dashboard.server import AppServer
from predis.dashboard.views import Views


@pytest.fixture
def history():
    h = History()
    seed(h, T0)
    yield h
    h.close()


@pytest.fixture
def acme(tokens):
    return tokens.create("acme", "dashboard")


def test_forged_session_cookies_are_refused(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    real = client(url, acme[0]).cookies[SESSION_COOKIE]
    forged = [
        "x",
        "A" * 43,
        real[:-1] + ("A" if real[-1] != "A" else "B"),  # one character off
        real + "A",
        "' OR '1'='1",
        "../../etc/passwd",
        "%00" + real,
        "A" * 5000,
    ]
    for value in forged:
        c = client(url)
        c.cookies.set(SESSION_COOKIE, value)
        assert c.get("/api/overview").status_code == 401, value
        assert c.get("/", follow_redirects=False).status_code == 303, value


def test_forged_and_wrong_scope_tokens_cannot_log_in(make_app, history, tokens, acme):
    url, _ = make_app(history, T0 + 125, login_failures=100)
    token, info = acme
    read_only = tokens.create("acme", "read")[0]
    bad = [
        "",
        "pdk_00000000_" + "A" * 43,  # well-formed, unknown id
        f"pdk_{info.id}_" + "A" * 43,  # known id, wrong secret
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token + "x",
        read_only,  # genuine, but lacks the dashboard scope
        "' OR 1=1 --",
        "x" * 10_000,
    ]
    for value in bad:
        c = client(url)
        r = login(c, value)
        assert r.status_code in (401, 403), value
        assert SESSION_COOKIE not in c.cookies, value
        assert c.get("/api/overview").status_code == 401


def test_revoked_and_expired_tokens(make_app, history, tokens, acme):
    url, _ = make_app(history, T0 + 125)
    token, info = acme
    c = client(url, token)
    assert c.get("/api/overview").status_code == 200
    tokens.revoke(info.id)
    # The open session ends at once, and the token cannot log in again.
    assert c.get("/api/overview").status_code == 401
    assert login(client(url), token).status_code == 401
    short, _ = tokens.create("acme", "dashboard", ttl_s=1.0)
    c2 = client(url, short)
    assert c2.get("/api/overview").status_code == 200
    time.sleep(1.2)
    assert c2.get("/api/overview").status_code == 401


def test_login_csrf(make_app, history, acme):
    url, _ = make_app(history, T0 + 125, login_failures=100)
    token = acme[0]
    c = client(url)
    page = c.get("/login")
    csrf = csrf_of(page.text)
    # Missing, wrong, and a field without its cookie.
    assert c.post("/login", data={"token": token}).status_code == 403
    assert c.post("/login", data={"token": token, "csrf": csrf + "x"}).status_code == 403
    bare = client(url)
    assert bare.post("/login", data={"token": token, "csrf": csrf}).status_code == 403
    # A post from another origin, even with the right token pair.
    r = c.post(
        "/login",
        data={"token": token, "csrf": csrf},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    # Not a form at all.
    assert c.post("/login", json={"token": token, "csrf": csrf}).status_code == 403
    # Each refused form hands out a fresh CSRF token; the stale one no longer works.
    assert c.post("/login", data={"token": token, "csrf": csrf}).status_code == 403
    assert login(c, token).status_code == 303


def test_logout_needs_the_session_csrf_token(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    c = client(url, acme[0])
    page = c.get("/")
    csrf = csrf_of(page.text)
    assert c.post("/logout").status_code == 403
    assert c.post("/logout", data={"csrf": "wrong"}).status_code == 403
    assert c.post("/logout", data={"csrf": csrf}, headers={"Origin": "null"}).status_code == 403
    assert c.get("/api/overview").status_code == 200  # still logged in
    r = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    c.cookies.clear()
    assert c.get("/api/overview").status_code == 401


def test_logged_out_session_cannot_be_replayed(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    c = client(url, acme[0])
    sid = c.cookies[SESSION_COOKIE]
    c.post("/logout", data={"csrf": csrf_of(c.get("/").text)})
    replay = client(url)
    replay.cookies.set(SESSION_COOKIE, sid)
    assert replay.get("/api/overview").status_code == 401


def test_failed_logins_are_rate_limited(make_app, history, acme):
    url, _ = make_app(history, T0 + 125, login_failures=3, login_window_s=60.0)
    c = client(url)
    for _ in range(3):
        assert login(c, "pdk_00000000_" + "A" * 43).status_code == 401
    r = login(c, acme[0])  # even the right token waits out the window
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert SESSION_COOKIE not in c.cookies


def test_rate_limiter_window_and_reset():
    now = [0.0]
    lim = LoginRateLimiter(2, 10.0, clock=lambda: now[0])
    lim.fail("a")
    assert lim.retry_after("a") == 0
    lim.fail("a")
    assert lim.retry_after("a") == pytest.approx(10.0)
    assert lim.retry_after("b") == 0  # per address
    now[0] = 9.0
    assert lim.retry_after("a") == pytest.approx(1.0)
    now[0] = 10.5
    assert lim.retry_after("a") == 0
    lim.fail("a")
    lim.succeed("a")
    lim.fail("a")
    assert lim.retry_after("a") == 0


def test_session_store_keeps_only_digests():
    now = [100.0]
    store = SessionStore(60.0, clock=lambda: now[0])
    sid, s = store.create("acme", "0123abcd")
    assert store.get(sid) == s
    assert sid not in repr(store.__dict__)
    now[0] = 161.0
    assert store.get(sid) is None


def test_cookie_flags_and_security_headers(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    c = client(url)
    r = login(c, acme[0])
    cookie = next(
        v for k, v in r.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    page = c.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


def test_secure_cookie_under_tls(history, customers, tokens, tmp_path):
    cert, key = _self_signed(tmp_path)
    views = Views(history, customers, INTERVAL, 3600, 30, clock=Clock(T0 + 125))
    app = build_app(
        views,
        customers,
        tokens,
        session_ttl_s=60,
        login_failures=3,
        login_window_s=60,
        refresh_s=1,
        tls=True,
    )
    token = tokens.create("acme", "dashboard")[0]
    with AppServer(app, tls_certfile=cert, tls_keyfile=key) as srv:
        assert srv.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=cert)
        with httpx.Client(base_url=srv.url, verify=ctx, timeout=30) as c:
            r = login(c, token)
            assert r.status_code == 303
            assert "Secure" in r.headers["set-cookie"]
            assert "strict-transport-security" in c.get("/login").headers
            assert c.get("/api/overview").status_code == 200


def test_static_route_refuses_traversal(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    c = client(url, acme[0])
    assert c.get("/static/dashboard.js").status_code == 200
    for path in (
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/templates%2Fbase.html",
        "/static/app.py",
        "/static/.%2Fdashboard.js",
        "/static/dashboard.js%00.png",
        "/static//etc/passwd",
    ):
        r = c.get(path)
        assert r.status_code == 404, path
        assert "predis" not in r.text.lower() or r.text == "not found\n", path


def test_sql_injection_in_parameters_changes_nothing(make_app, history, acme):
    url, _ = make_app(history, T0 + 125)
    c = client(url, acme[0])
    before = c.get("/api/overview").json()
    for value in (
        "acme' OR '1'='1",
        "acme'; DROP TABLE samples; --",
        'acme" UNION SELECT * FROM series --',
        "globex%27--",
        "ACME",
        "a",
        "acme\x00",
    ):
        r = c.get("/api/overview", params={"customer": value})
        assert r.status_code == 400, value
        assert "invalid customer id" in r.json()["error"]
    for value in ("3600; DROP TABLE samples", "1 OR 1=1"):
        assert c.get("/api/overview", params={"range": value}).status_code == 400
    assert c.get("/api/stream", params={"page": "x' OR 1=1"}).status_code == 400
    after = c.get("/api/overview").json()
    assert after["roi"] == before["roi"]
    assert history.points("predis_keyspace_hits_total", 0, T0 + 1000)


def test_hostile_label_values_are_stored_as_data(tmp_path):
    h = History(tmp_path / "h.sqlite")
    evil = {"cache": "x'); DROP TABLE samples; --"}
    h.add_scrape("t", 1.0, [("predis_keyspace_hits_total", evil, 1.0)])
    h.add_scrape("t'; DROP TABLE series; --", 2.0, [("predis_keyspace_hits_total", evil, 2.0)])
    pts = h.points("predis_keyspace_hits_total", 0, 10, "cache", [evil["cache"]])
    assert [p.value for p in pts] == [1.0, 2.0]
    assert pts[1].target == "t'; DROP TABLE series; --"
    h.close()
