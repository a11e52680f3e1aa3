"""Redis over TLS with a client certificate (mTLS), and what a refused connection says.

Each module-scoped server is a real redis-server on loopback: one that speaks only TLS
and requires a client certificate signed by a throwaway CA (made with openssl per test
session), and one without TLS that requires a password.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from blazing import Blazing
from blazing.errors import ConfigurationError, StoreUnavailable
from blazing.settings import resolve
from tests.support.redis_server import Certs, RedisServer, make_certs, require_redis

pytestmark = pytest.mark.timeout(60)
SECRET = "tls-secret"
PASSWORD = "right-pa55word"


def _skip_or_fail(reason: str) -> None:
    if require_redis():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and a stranger CA."""
    try:
        return make_certs(tmp_path_factory.mktemp("pki"))
    except RuntimeError as exc:
        _skip_or_fail(f"cannot make test certificates: {exc}")
        raise


def _started(server_args: dict) -> Iterator[RedisServer]:
    try:
        server = RedisServer(**server_args)
    except RuntimeError as exc:
        _skip_or_fail(str(exc))
        raise
    try:
        server.start()
    except RuntimeError as exc:
        server.close()
        # A redis-server built without TLS refuses --tls-port and exits here.
        _skip_or_fail(f"redis-server did not start with {sorted(server_args)}: {exc}")
        raise
    yield server
    server.close()


@pytest.fixture(scope="module")
def mtls_server(certs: Certs) -> Iterator[RedisServer]:
    """A redis-server that speaks only TLS and requires a client certificate."""
    yield from _started({"tls": certs})


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    """A redis-server (no TLS) that requires a password."""
    yield from _started({"requirepass": PASSWORD})


@pytest.fixture
def ns() -> str:
    return "tls" + uuid.uuid4().hex[:10]


def tls_url(server: RedisServer, **options: Path | str) -> str:
    """The server's rediss:// URL with TLS query options."""
    return f"{server.url}?{urlencode({k: str(v) for k, v in options.items()})}" if options \
        else server.url


def round_trip(make_app, **options) -> None:
    """A workflow calling a step runs to its result through the store."""
    app = make_app(secret=SECRET, **options)

    @app.step
    async def double(x: int) -> int:
        return 2 * x

    @app.workflow
    async def flow(x: int) -> int:
        return await double(x) + 1

    assert app.run_sync("flow", 20) == 41


def refused(make_app, **options) -> BaseException:
    """The error with which an app on these options fails to start."""
    app = make_app(secret=SECRET, connect_timeout=5, **options)

    @app.step
    async def anything() -> int:
        return 1

    with pytest.raises(Exception) as info:
        app.run_sync("anything")
    return info.value


# ----------------------------------------------------------------- mTLS runs


def test_run_over_mtls_with_url_options(make_app, mtls_server, certs, ns):
    url = tls_url(mtls_server, tls_ca_file=certs.ca, tls_cert_file=certs.client_cert,
                  tls_key_file=certs.client_key)
    round_trip(make_app, redis_url=url, namespace=ns)
    assert int(mtls_server.cli("dbsize")) > 0, "the run's records are in the TLS server"


def test_run_over_mtls_with_settings(make_app, mtls_server, certs, ns):
    round_trip(make_app, redis_url=mtls_server.url, namespace=ns, tls_ca_file=certs.ca,
               tls_cert_file=str(certs.client_cert), tls_key_file=certs.client_key)


def test_run_over_mtls_with_env_twins(make_app, mtls_server, certs, ns, monkeypatch):
    monkeypatch.setenv("BLAZING_REDIS_URL", mtls_server.url)
    monkeypatch.setenv("BLAZING_TLS_CA_FILE", str(certs.ca))
    monkeypatch.setenv("BLAZING_TLS_CERT_FILE", str(certs.client_cert))
    monkeypatch.setenv("BLAZING_TLS_KEY_FILE", str(certs.client_key))
    round_trip(make_app, namespace=ns)


def test_url_options_win_over_settings(make_app, mtls_server, certs, ns):
    # The settings name the wrong CA and a client the server does not trust; the URL
    # names the right ones, and wins (the certificate and key as a pair).
    url = tls_url(mtls_server, tls_ca_file=certs.ca, tls_cert_file=certs.client_cert,
                  tls_key_file=certs.client_key)
    round_trip(make_app, redis_url=url, namespace=ns, tls_ca_file=certs.other_ca,
               tls_cert_file=certs.other_client_cert, tls_key_file=certs.other_client_key)


# ------------------------------------------------------------ TLS refusals


def test_without_client_certificate_is_store_unavailable(make_app, mtls_server, certs, ns):
    exc = refused(make_app, redis_url=tls_url(mtls_server, tls_ca_file=certs.ca), namespace=ns)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    assert isinstance(exc, ConnectionError)
    msg = str(exc)
    assert "TLS" in msg and "client certificate" in msg, msg
    assert "tls_cert_file" in msg and "tls_key_file" in msg, "names the options that fix it"
    assert f"127.0.0.1:{mtls_server.port}" in msg


def test_client_certificate_of_another_ca_is_refused(make_app, mtls_server, certs, ns):
    exc = refused(make_app, redis_url=mtls_server.url, namespace=ns, tls_ca_file=certs.ca,
                  tls_cert_file=certs.other_client_cert, tls_key_file=certs.other_client_key)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    assert "refused the client certificate" in str(exc) and str(certs.other_client_cert) in str(exc)


def test_wrong_ca_is_a_clear_error(make_app, mtls_server, certs, ns):
    exc = refused(make_app, redis_url=mtls_server.url, namespace=ns, tls_ca_file=certs.other_ca,
                  tls_cert_file=certs.client_cert, tls_key_file=certs.client_key)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    msg = str(exc)
    assert "TLS" in msg and "unknown authority" in msg, msg
    assert f"tls_ca_file {certs.other_ca}" in msg, "names the CA file in force"


def test_plain_url_to_a_tls_server_suggests_rediss(make_app, mtls_server, ns):
    url = mtls_server.url.replace("rediss://", "redis://")
    exc = refused(make_app, redis_url=url, namespace=ns)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    assert "rediss://" in str(exc)


# --------------------------------------------------------------- credentials


def test_wrong_password_says_the_credentials_were_refused(make_app, password_server, ns):
    url = password_server.url.replace("redis://", "redis://:wrong-pa55word@")
    exc = refused(make_app, redis_url=url, namespace=ns)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    msg = str(exc)
    assert "refused the credentials" in msg and "WRONGPASS" in msg, msg
    assert "does not answer" not in msg
    assert "wrong-pa55word" not in msg and PASSWORD not in msg
    assert f"127.0.0.1:{password_server.port}" in msg


def test_missing_password_says_one_is_required(make_app, password_server, ns):
    exc = refused(make_app, redis_url=password_server.url, namespace=ns)
    assert isinstance(exc, StoreUnavailable), repr(exc)
    assert "requires a password and the URL gives none" in str(exc)


def test_right_password_runs(make_app, password_server, ns):
    url = password_server.url.replace("redis://", f"redis://:{PASSWORD}@")
    round_trip(make_app, redis_url=url, namespace=ns)


# ------------------------------------------------------- settings and files


def test_unusable_tls_files_are_configuration_errors(make_app, certs, tmp_path, ns):
    # No server is needed: the files are refused before any connection.
    url = "rediss://127.0.0.1:1/0"
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    cases = [
        ({"tls_cert_file": certs.client_cert}, f"tls_cert_file {certs.client_cert} is given "
                                               "without tls_key_file"),
        ({"tls_key_file": certs.client_key}, "without tls_cert_file"),
        ({"tls_ca_file": missing}, f"tls_ca_file {missing}: cannot read it"),
        ({"tls_ca_file": not_pem}, f"tls_ca_file {not_pem}: no PEM certificate"),
        ({"tls_cert_file": certs.client_cert, "tls_key_file": certs.other_client_key},
         "private key does not match"),
    ]
    for options, want in cases:
        exc = refused(make_app, redis_url=url, namespace=ns, **options)
        assert isinstance(exc, ConfigurationError), (options, repr(exc))
        assert want in str(exc), (options, str(exc))


def test_tls_settings_need_a_tls_url(certs, monkeypatch):
    with pytest.raises(ConfigurationError, match="TLS options need rediss://"):
        Blazing(redis_url="redis://:pw@127.0.0.1:6379/0", tls_ca_file=certs.ca)
    with pytest.raises(ConfigurationError, match="needs a Redis store over TLS"):
        Blazing(tls_ca_file=certs.ca)
    monkeypatch.setenv("BLAZING_TLS_CERT_FILE", str(certs.client_cert))
    with pytest.raises(ConfigurationError, match="BLAZING_TLS_CERT_FILE is set but") as info:
        Blazing(redis_url="redis://:pw@127.0.0.1:6379/0")
    assert ":pw@" not in str(info.value)
    Blazing()  # the embedded store ignores the twins, like the other Redis settings'
    with pytest.raises(ConfigurationError, match="non-empty path"):
        Blazing(redis_url="rediss://127.0.0.1:6379/0", tls_ca_file="")


def test_tls_settings_reach_the_core_and_every_tls_scheme_is_accepted(certs):
    for url in ("rediss://h:6380/0", "rediss+sentinel://h1:26379,h2:26379/mymaster",
                "rediss+cluster://h1:7000,h2:7001"):
        st = resolve(redis_url=url, tls_ca_file=certs.ca, tls_cert_file=certs.client_cert,
                     tls_key_file=certs.client_key)
        cfg = st.store_config()
        assert (cfg["tls_ca_file"], cfg["tls_cert_file"], cfg["tls_key_file"]) == (
            str(certs.ca), str(certs.client_cert), str(certs.client_key)), url
    assert "tls_ca_file" not in resolve(redis_url="rediss://h:6380/0").store_config()
