"""Making an app again in the same process replaces the one of the same name (same module,
store and namespace): a notebook cell ``app = SyncBlazing()`` re-run 20 times leaves one
app's threads, not twenty. Counted with ``threading.enumerate()`` and ``/proc/self/task``,
in this process and in a real ipykernel."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest

from blazing import SyncBlazing
from blazing.errors import EngineClosedError
from tests.support.sockets import require_servers
from tests.support.web_server import example_env

pytestmark = pytest.mark.timeout(180)

CELL = """
from blazing import SyncBlazing

app = SyncBlazing()


@app.step
def double(x: int) -> int:
    return 2 * x


@app.workflow
async def twice_doubled(x: int) -> int:
    return await double(await double(x))


assert app.twice_doubled(5) == 20
"""

# Go keeps a few OS threads of its own once made (it never gives them back): allow that
# many more tasks after 20 runs than after the first, far fewer than one app's worth.
GO_THREAD_SLACK = 4


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def python_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def test_rerunning_a_cell_20_times_keeps_one_app():
    cell = compile(CELL, "<notebook cell>", "exec")
    namespace = {"__name__": "__main__"}  # what a notebook's cells run in
    made = []
    for run in range(20):
        exec(cell, namespace)
        made.append(namespace["app"])  # held, as a notebook's Out[] history may hold them
        if run == 0:
            first_python, first_os = python_threads(), os_threads()
    try:
        assert python_threads() == first_python
        assert os_threads() <= first_os + GO_THREAD_SLACK, (first_os, os_threads())
        assert sum(a._runtime.started for a in made) == 1 and made[-1]._runtime.started
        # An app that was replaced says so rather than starting a second engine.
        with pytest.raises(EngineClosedError, match="replaced by a newer app of the same name "
                                                    r"\(module __main__, namespace 'blazing'"):
            made[0].twice_doubled(1)
        assert made[-1].twice_doubled(1) == 4
    finally:
        made[-1].stop()
    assert not any(t.startswith("blazing-") for t in python_threads()), python_threads()


def test_apps_of_other_namespaces_or_modules_live_side_by_side(make_app):
    first = make_app(SyncBlazing, namespace="left")
    second = make_app(SyncBlazing, namespace="right")
    namespace = {"__name__": "some_other_module"}
    exec("from blazing import SyncBlazing\nthird = SyncBlazing(namespace='left')", namespace)
    third = namespace["third"]
    try:
        for app in (first, second, third):
            @app.step
            def ident(x: int) -> int:
                return x

        assert [first.ident(1), second.ident(2), third.ident(3)] == [1, 2, 3]
        assert all(a._runtime.started for a in (first, second, third))
    finally:
        third.stop()


def test_replacing_lets_the_old_apps_running_work_finish(make_app, caplog):
    namespace = {"__name__": "__main__"}
    exec("from blazing import SyncBlazing\napp = SyncBlazing()", namespace)
    old = namespace["app"]
    release = threading.Event()

    @old.step
    def held() -> str:
        release.wait(60)
        return "finished on the old app"

    run = old.submit(held)
    replaced = threading.Event()

    class Replacing(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "replacing the app of module __main__" in record.getMessage():
                replaced.set()

    handler = Replacing()
    logging.getLogger("blazing.app").addHandler(handler)
    logging.getLogger("blazing.app").setLevel(logging.INFO)
    maker = threading.Thread(target=exec, args=(
        "from blazing import SyncBlazing\napp = SyncBlazing()", namespace))
    try:
        maker.start()
        assert replaced.wait(30), "the new app did not start replacing the old one"
        assert maker.is_alive(), "the old app stopped without waiting for its running step"
        release.set()
        maker.join(60)
        assert run.result_sync(timeout=30) == "finished on the old app"
        assert not old._runtime.started and namespace["app"] is not old
    finally:
        release.set()
        logging.getLogger("blazing.app").removeHandler(handler)
        namespace["app"].stop()


def test_rerunning_a_cell_20_times_in_a_real_kernel(monkeypatch):
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        if require_servers():
            raise
        pytest.skip("nbclient is not installed (pip install -e '.[integrations]')")
    counts = """
import json, os, threading
def counts():
    return {"python": sorted(t.name for t in threading.enumerate()),
            "os": len(os.listdir("/proc/self/task"))}
"""
    cells = [nbformat.v4.new_code_cell(counts), nbformat.v4.new_code_cell(CELL),
             nbformat.v4.new_code_cell("first = counts()")]
    cells += [nbformat.v4.new_code_cell(CELL) for _ in range(19)]
    cells.append(nbformat.v4.new_code_cell(
        "print(json.dumps({'first': first, 'last': counts()}))"))
    nb = nbformat.v4.new_notebook(cells=cells)
    for key, value in example_env().items():
        monkeypatch.setenv(key, value)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    report = json.loads(nb.cells[-1].outputs[0]["text"])
    first, last = report["first"], report["last"]
    assert last["python"] == first["python"]
    assert sum(name == "blazing-runtime" for name in last["python"]) == 1, last["python"]
    assert last["os"] <= first["os"] + GO_THREAD_SLACK, report
