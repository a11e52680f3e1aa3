"""The recipes in examples/ run as their docs (docs/integrations.md) say, against real
servers and a real kernel: FastAPI under uvicorn (embedded, and two web processes on
Redis with worker processes), Django's dev server (embedded, and on Redis with workers run
by its management command), Flask's dev server, and the notebook on an ipykernel.

Each test skips, naming the package, where the framework is not installed (``pip install
-e '.[integrations]'``), unless BLAZING_REQUIRE_SERVERS=1 or CI=true make it mandatory."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from blazing import SyncBlazing
from tests.support.sockets import require_servers
from tests.support.web_server import EXAMPLES, WebServer, example_env
from tests.support.workers import Worker

pytestmark = pytest.mark.timeout(180)
SECRET = "recipes-secret"
WIDGETS = {"sku": "widget", "qty": 3, "total": 9.0}  # 3 x 2.50, plus 20 %


def need(*modules: str) -> None:
    """Skip (fail where servers are required) unless every module imports."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            if require_servers():
                raise
            pytest.skip(f"{name} is not installed (pip install -e '.[integrations]')")


@pytest.fixture
def redis_env(redis_server) -> dict[str, str]:
    """The settings of a Redis deployment of an example, on a namespace of its own."""
    return {"BLAZING_REDIS_URL": redis_server.url,
            "BLAZING_NAMESPACE": "recipe" + uuid.uuid4().hex[:10], "BLAZING_SECRET": SECRET}


def start_worker(argv: list[str], cwd: Path, env: dict[str, str], log: Path, kind: str) -> Worker:
    """A worker process of an example, ready to serve (bounded wait)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=out,
                                stdin=subprocess.DEVNULL)
    worker = Worker(proc, kind)
    worker.wait_ready(60)
    return worker


def ran_on(redis_env: dict[str, str], run_ids: list[str]) -> set[int]:
    """The pids of the processes whose workers ran the operations of these runs (the
    store's records name each worker by host, pid and a suffix)."""
    reader = SyncBlazing(redis_url=redis_env["BLAZING_REDIS_URL"],
                         namespace=redis_env["BLAZING_NAMESPACE"], local_workers=False,
                         secret=SECRET)
    try:
        return {int(op.worker.rsplit("-", 2)[1]) for rid in run_ids
                for op in reader.history(rid)}
    finally:
        reader.stop()


# ----------------------------------------------------------------------- FastAPI


def test_fastapi_embedded_under_uvicorn(tmp_path):
    need("fastapi", "uvicorn", "httpx")
    import httpx

    server = WebServer([sys.executable, "-m", "uvicorn", "fastapi_app:api", "--host",
                        "127.0.0.1", "--port", "{port}"], cwd=EXAMPLES, env=example_env(),
                       log=tmp_path / "uvicorn.log")
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        got = http.post("/quotes/widget", params={"qty": 3})
        assert got.status_code == 200, got.text
        assert got.json()["quote"] == WIDGETS
        # Many at once, on one event loop and the embedded workers.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda q: http.post("/quotes/gadget", params={"qty": q}),
                                    range(1, 17)))
        assert [a.json()["quote"]["total"] for a in answers] == [12.0 * q for q in range(1, 17)]
        # The step's KeyError reaches the endpoint with its type: a 404.
        missing = http.post("/quotes/nothing")
        assert missing.status_code == 404 and "no price for 'nothing'" in missing.text
        # Submit now, read later.
        later = http.post("/quotes/widget/later", params={"qty": 3})
        assert later.status_code == 202
        run_id = later.json()["run_id"]
        body = http.get(f"/runs/{run_id}").json()
        while body["status"] not in ("succeeded", "failed"):  # the run is in-process: fast
            body = http.get(f"/runs/{run_id}").json()
        assert body == {"run_id": run_id, "status": "succeeded", "quote": WIDGETS}
        assert http.get("/runs/no-such-run").status_code == 404
    # SIGTERM ran the lifespan's exit: the app stopped with the server.
    assert "Application shutdown complete" in server.output(), server.output()


def test_fastapi_two_web_processes_on_redis_with_workers(tmp_path, redis_env):
    need("fastapi", "uvicorn", "httpx")
    import httpx

    workers = [start_worker([sys.executable, "-m", "blazing.worker", "--app", "fastapi_app:flow",
                             "--type", kind], EXAMPLES, example_env(redis_env),
                            tmp_path / f"worker-{kind}.log", kind)
               for kind in ("async", "blocking")]
    web_env = example_env({**redis_env, "BLAZING_LOCAL_WORKERS": "0"})
    server = WebServer([sys.executable, "-m", "uvicorn", "fastapi_app:api", "--host",
                        "127.0.0.1", "--port", "{port}", "--workers", "2"], cwd=EXAMPLES,
                       env=web_env, log=tmp_path / "uvicorn.log")
    try:
        with server, httpx.Client(base_url=server.url, timeout=60) as http:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(
                    lambda q: http.post("/quotes/widget", params={"qty": q}), range(1, 21)))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            assert [a.json()["quote"]["total"] for a in answers] == \
                [round(2.5 * q * 1.2, 2) for q in range(1, 21)]
            run_ids = [a.json()["run_id"] for a in answers]
            # Submitted by one web process, read by whichever answers.
            later = http.post("/quotes/gadget/later", params={"qty": 2}).json()["run_id"]
            body = http.get(f"/runs/{later}").json()
            while body["status"] not in ("succeeded", "failed"):
                body = http.get(f"/runs/{later}").json()
            assert body["quote"] == {"sku": "gadget", "qty": 2, "total": 24.0}
        # The web processes only submitted: every operation ran on the two workers, the
        # workflow and fetch_price on the async one, with_tax on the blocking one.
        assert ran_on(redis_env, run_ids) == {w.pid for w in workers}
    finally:
        server.stop()
        for w in workers:
            assert w.terminate(60) == 0
    assert server.output().count("Application shutdown complete") == 2, server.output()


# ------------------------------------------------------------------------ Django

DJANGO = EXAMPLES / "django_project"


def django_server(tmp_path: Path, env: dict[str, str]) -> WebServer:
    return WebServer([sys.executable, "manage.py", "runserver", "--noreload",
                      "127.0.0.1:{port}"], cwd=DJANGO, env=env, log=tmp_path / "django.log")


def test_django_embedded_dev_server(tmp_path):
    need("django", "httpx")
    import httpx

    server = django_server(tmp_path, example_env(cwd=DJANGO))
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/quotes/widget", params={"qty": 3}).json() == WIDGETS
        with ThreadPoolExecutor(8) as pool:  # the dev server's threads share the app
            answers = list(pool.map(lambda q: http.get("/quotes/gadget", params={"qty": q}),
                                    range(1, 17)))
        assert [a.json()["total"] for a in answers] == [12.0 * q for q in range(1, 17)]
        missing = http.get("/quotes/nothing")
        assert missing.status_code == 404


def test_django_on_redis_with_management_command_workers(tmp_path, redis_env):
    need("django", "httpx")
    import httpx

    env = example_env(redis_env, cwd=DJANGO)
    workers = [start_worker([sys.executable, "manage.py", "blazing_worker", "--type", kind],
                            DJANGO, env, tmp_path / f"worker-{kind}.log", kind)
               for kind in ("async", "blocking")]
    server = django_server(tmp_path, {**env, "BLAZING_LOCAL_WORKERS": "0"})
    try:
        with server, httpx.Client(base_url=server.url, timeout=60) as http:
            answers = [http.get("/quotes/widget", params={"qty": q}) for q in range(1, 6)]
            assert [a.json()["total"] for a in answers] == \
                [round(2.5 * q * 1.2, 2) for q in range(1, 6)]
            assert http.get("/quotes/nothing").status_code == 404
    finally:
        server.stop()
        codes = [w.terminate(60) for w in workers]
    # SIGTERM drains a worker the command runs, and it exits 0 as python -m blazing.worker.
    assert codes == [0, 0], [(tmp_path / f"worker-{k}.log").read_text() for k in
                             ("async", "blocking")]
    log = (tmp_path / "worker-async.log").read_text()
    assert "serving orders.tasks:flow (async" in log and "KeyError" in log


def test_django_worker_command_without_redis_says_so(tmp_path):
    need("django")
    out = subprocess.run([sys.executable, "manage.py", "blazing_worker", "--type", "async"],
                         cwd=DJANGO, env=example_env(cwd=DJANGO), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out
    assert "needs a Redis store: pass redis_url= to the app or set BLAZING_REDIS_URL" in \
        out.stderr


# ------------------------------------------------------------------------- Flask


def test_flask_dev_server(tmp_path):
    need("flask", "httpx")
    import httpx

    server = WebServer([sys.executable, "-m", "flask", "--app", "flask_app", "run", "--host",
                        "127.0.0.1", "--port", "{port}"], cwd=EXAMPLES, env=example_env(),
                       log=tmp_path / "flask.log")
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/quotes/widget", params={"qty": 3}).json() == WIDGETS
        with ThreadPoolExecutor(8) as pool:  # threaded: each request blocks its own thread
            answers = list(pool.map(lambda q: http.post("/quotes/gadget", params={"qty": q}),
                                    range(1, 17)))
        assert [a.json()["total"] for a in answers] == [12.0 * q for q in range(1, 17)]
        missing = http.post("/quotes/nothing")
        assert missing.status_code == 404 and "no price for" in missing.text


# ----------------------------------------------------------------------- Jupyter


def test_notebook_runs_on_a_real_kernel(monkeypatch):
    need("nbclient", "nbformat", "ipykernel")
    import nbformat
    from nbclient import NotebookClient

    for key, value in example_env().items():
        monkeypatch.setenv(key, value)  # the kernel inherits them
    nb = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    results = [out["data"]["text/plain"] for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []) if out["output_type"] == "execute_result"]
    # SyncBlazing's result, top-level await's, and run_sync in a cell.
    assert results == ["{'id': '123', 'result': 6}", "14", "5"]
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out["output_type"] == "error"]
    assert errors == []
