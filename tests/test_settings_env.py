"""Environment twins: every BLAZING_* variable the option tables of docs/api.md and
docs/deployment.md list is read, and a bad value is a ConfigurationError naming the
variable and its text, not the option it stands for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blazing import Blazing, ConfigurationError, SyncBlazing
from blazing.settings import resolve

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Bad values per variable; each must be refused naming the variable and the value.
BAD: dict[str, list[str]] = {
    "BLAZING_REDIS_URL": ["http://localhost:6379/0", "localhost:6379"],
    "BLAZING_TLS_CA_FILE": ["/nonexistent/ca.pem"],
    "BLAZING_TLS_CERT_FILE": ["/nonexistent/client.pem"],
    "BLAZING_TLS_KEY_FILE": ["/nonexistent/client.key"],
    "BLAZING_LEASE_SECONDS": ["soon", "-1", "0", "2"],  # 2: not longer than the heartbeat (5)
    "BLAZING_HEARTBEAT_SECONDS": ["often", "0", "30"],  # 30: not shorter than the lease (30)
    "BLAZING_RETENTION_SECONDS": ["a week", "-1", "0", "0.5", "inf"],
    "BLAZING_FAILED_RETENTION_SECONDS": ["nan", "0"],
    "BLAZING_MAX_VALUE_BYTES": ["lots", "0", "1.5"],
    "BLAZING_DRAIN_TIMEOUT": ["nan", "-3"],
    "BLAZING_BLOCKED_LOOP_SECONDS": ["x", "-0.5"],
    "BLAZING_MAX_LAPSES": ["many", "0", "2.5"],
    "BLAZING_RETENTION_MAX_RUNS": ["0", "10.5", "-100"],
    "BLAZING_HISTORY": ["maybe", "2"],
    "BLAZING_MAX_BREADCRUMBS": ["0", "-1", "1e400"],
    "BLAZING_OUTAGE_TIMEOUT": ["0", "forever"],
    "BLAZING_JANITOR_SECONDS": ["0", "-1"],
    "BLAZING_CONNECT_TIMEOUT": ["0", "inf", "x"],
    "BLAZING_NAMESPACE": ["two words", "{tagged}", "x" * 65],
    "BLAZING_LOCAL_WORKERS": ["perhaps", "0"],  # 0: without a Redis URL nothing would run work
}
# Twins every value of is good: the secret is any non-empty string (an empty one, as for
# every twin, reads as unset: a random per-process secret).
NO_BAD_VALUE = {"BLAZING_SECRET"}
# The TLS twins take effect with a rediss:// store only (without one they are ignored).
NEEDS_TLS_URL = {"BLAZING_TLS_CA_FILE", "BLAZING_TLS_CERT_FILE", "BLAZING_TLS_KEY_FILE"}


def documented_twins() -> set[str]:
    """The BLAZING_* names in the option tables (table rows) of the API and deployment docs."""
    names: set[str] = set()
    for doc in ("api.md", "deployment.md"):
        for line in (DOCS / doc).read_text().splitlines():
            if line.startswith("|") and "BLAZING_FOREMAN_" not in line:
                names.update(re.findall(r"`(BLAZING_[A-Z_]+)`", line))
    return names


def test_every_documented_twin_has_bad_values_here():
    twins = documented_twins()
    assert len(twins) >= 20, twins  # the tables were found and read
    assert twins == set(BAD) | NO_BAD_VALUE, (
        f"documented but untested: {sorted(twins - set(BAD) - NO_BAD_VALUE)}; "
        f"tested but not documented: {sorted(set(BAD) | NO_BAD_VALUE) - twins}")


@pytest.mark.parametrize("cls", [Blazing, SyncBlazing])
@pytest.mark.parametrize("var, value", [(v, x) for v, xs in BAD.items() for x in xs])
def test_a_bad_value_names_the_variable(monkeypatch, cls, var, value):
    if var in NEEDS_TLS_URL:
        monkeypatch.setenv("BLAZING_REDIS_URL", "rediss://127.0.0.1:1/0")
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as info:
        cls()
    assert f"environment variable {var}={value!r}" in str(info.value), str(info.value)


@pytest.mark.parametrize("option, env, value", [
    ("retention_seconds", "BLAZING_RETENTION_SECONDS", 0.5),
    ("max_lapses", "BLAZING_MAX_LAPSES", 0),
    ("janitor_seconds", "BLAZING_JANITOR_SECONDS", 0),
    ("connect_timeout", "BLAZING_CONNECT_TIMEOUT", 0),
    ("heartbeat_seconds", "BLAZING_HEARTBEAT_SECONDS", 40),
])
def test_an_option_given_in_code_is_named_as_the_option(monkeypatch, option, env, value):
    # The twin holds a good value; the option overrides it, so the option is to blame.
    monkeypatch.setenv(env, "7")
    with pytest.raises(ConfigurationError) as info:
        Blazing(**{option: value})
    assert f"{option}={value!r}" in str(info.value) and env not in str(info.value)


def test_good_values_from_the_environment_are_read(monkeypatch, tmp_path):
    ca, cert, key = (tmp_path / f for f in ("ca.pem", "client.pem", "client.key"))
    for f in (ca, cert, key):
        f.write_text("read by the core when the store opens\n")
    good = {
        "BLAZING_REDIS_URL": "rediss://127.0.0.1:1/0", "BLAZING_TLS_CA_FILE": str(ca),
        "BLAZING_TLS_CERT_FILE": str(cert), "BLAZING_TLS_KEY_FILE": str(key),
        "BLAZING_LEASE_SECONDS": "12", "BLAZING_HEARTBEAT_SECONDS": "3",
        "BLAZING_RETENTION_SECONDS": "60", "BLAZING_FAILED_RETENTION_SECONDS": "120",
        "BLAZING_MAX_VALUE_BYTES": "4096", "BLAZING_DRAIN_TIMEOUT": "0",
        "BLAZING_BLOCKED_LOOP_SECONDS": "0", "BLAZING_MAX_LAPSES": "2",
        "BLAZING_RETENTION_MAX_RUNS": "500", "BLAZING_HISTORY": "off",
        "BLAZING_MAX_BREADCRUMBS": "7", "BLAZING_OUTAGE_TIMEOUT": "9",
        "BLAZING_JANITOR_SECONDS": "11", "BLAZING_CONNECT_TIMEOUT": "1.5",
        "BLAZING_NAMESPACE": "env-ns", "BLAZING_LOCAL_WORKERS": "no",
    }
    for var, value in good.items():
        monkeypatch.setenv(var, value)
    st = resolve()
    assert (st.redis_url, st.tls_ca_file, st.tls_cert_file, st.tls_key_file) == (
        "rediss://127.0.0.1:1/0", str(ca), str(cert), str(key))
    assert (st.namespace, st.local_workers) == ("env-ns", False)
    assert (st.lease_seconds, st.heartbeat_seconds, st.retention_seconds,
            st.failed_retention_seconds) == (12, 3, 60, 120)
    assert (st.max_value_bytes, st.drain_timeout, st.blocked_loop_seconds, st.max_lapses,
            st.retention_max_runs, st.history, st.max_breadcrumbs) == (4096, 0, 0, 2, 500,
                                                                       False, 7)
    assert (st.outage_timeout, st.janitor_seconds, st.connect_timeout) == (9, 11, 1.5)
    assert documented_twins() - NO_BAD_VALUE == set(good)
