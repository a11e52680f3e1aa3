"""What an app registered: ``app.steps``, ``app.workflows``, ``app.services`` and the
original's names for them (``_step_funcs``, ``_route_funcs``, ``_service_registry``)."""

from collections.abc import Mapping

import pytest

from blazing import BaseService, Blazing, SyncBlazing


def register(app):
    """Two steps (one async, one blocking), a workflow and a service."""

    @app.step
    async def fetch(x: int) -> int:
        return x + 1

    @app.step
    def crunch(x: int) -> int:
        return x * 2

    @app.workflow
    async def pipeline(x: int) -> int:
        return await crunch(await fetch(x))

    @app.service
    class Prices(BaseService):
        async def quote(self) -> int:
            return 7

    return fetch, crunch, pipeline, Prices


@pytest.mark.parametrize("cls", [Blazing, SyncBlazing])
def test_each_kind_by_name_holds_what_the_decorator_returned(make_app, cls):
    app = make_app(cls)
    fetch, crunch, pipeline, prices = register(app)
    assert dict(app.steps) == {"fetch": fetch, "crunch": crunch}
    assert dict(app.workflows) == {"pipeline": pipeline}
    assert dict(app.services) == {"Prices": prices}
    assert list(app.steps) == ["fetch", "crunch"], "in registration order"
    assert len(app.steps) == 2 and "pipeline" not in app.steps and "fetch" in app.steps
    # Outside a run a decorated function is the plain function, so the values work as such.
    assert app.steps["crunch"](5) == 10
    # The original's names are the same views.
    assert dict(app._step_funcs) == dict(app.steps)
    assert dict(app._route_funcs) == dict(app.workflows)
    assert dict(app._service_registry) == dict(app.services)
    for view in (app.steps, app.workflows, app.services, app._step_funcs):
        assert isinstance(view, Mapping)


def test_views_are_read_only(app):
    register(app)
    with pytest.raises(TypeError):
        app.steps["other"] = lambda: None  # type: ignore[index]
    with pytest.raises(TypeError):
        del app.workflows["pipeline"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        app._service_registry.pop("Prices")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        app.steps = {}  # the attribute itself cannot be replaced
    assert set(app.steps) == {"fetch", "crunch"} and set(app.services) == {"Prices"}


def test_views_are_live_and_follow_redefinition(app):
    steps = app.steps
    assert len(steps) == 0 and repr(steps) == "<steps: none>"

    @app.step
    async def late(x):
        return x

    assert list(steps) == ["late"] and steps["late"] is late

    @app.step
    def late(x):  # noqa: F811 - a re-run notebook cell redefines it
        return -x

    assert steps["late"] is late and steps["late"](3) == -3
    assert repr(steps) == "<steps: late>"


def test_unknown_name_is_a_key_error_naming_what_is_there(app):
    register(app)
    with pytest.raises(KeyError, match=r"no workflow named 'fetch' \(registered: pipeline\)"):
        app.workflows["fetch"]
    with pytest.raises(KeyError, match=r"no service named 'Nope' \(registered: Prices\)"):
        app.services["Nope"]
    with pytest.raises(KeyError, match="no step named 3"):
        app.steps[3]  # type: ignore[index]
    assert app.steps.get("pipeline") is None


def test_registered_functions_run_through_the_app(sync_app):
    # What the views hand out is what runs: calling by the name found there works.
    register(sync_app)
    name = next(iter(sync_app.workflows))
    assert sync_app.run(name, 4) == 10
    assert sync_app.run(sync_app.workflows[name], 1) == 4
