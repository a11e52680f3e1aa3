"""Services: ``@app.service`` classes handed to steps and workflows by class name."""

import asyncio

import pytest

import blazing
import blazing.base
from blazing import BaseService


def test_both_import_paths_are_the_same_class():
    assert blazing.BaseService is blazing.base.BaseService
    assert BaseService is blazing.base.BaseService


def test_service_used_by_steps_by_index_and_get(app):
    @app.service
    class Greeter(BaseService):
        async def greet(self, name):
            return f"hello {name}"

    @app.step
    async def by_index(name, services=None):
        return await services["Greeter"].greet(name)

    @app.step
    async def by_get(name, services=None):
        return await services.get("Greeter").greet(name)

    @app.workflow
    async def wf(name, services=None):
        assert isinstance(services["Greeter"], Greeter)
        return [await by_index(name, services=services), await by_get(name, services=services)]

    assert app.run_sync("wf", "bob") == ["hello bob", "hello bob"]


def test_services_injected_when_caller_omits_them(app):
    @app.service
    class Store(BaseService):
        def __init__(self, connectors):
            super().__init__(connectors)
            self.tag = "store"

    @app.step
    async def async_step(services):
        return services["Store"].tag

    @app.step
    def sync_step(x, services=None):
        return (x, services["Store"].tag)

    @app.workflow
    async def wf():
        return [await async_step(), await sync_step(1)]

    assert app.run_sync("wf") == ["store", (1, "store")]


def test_step_without_services_parameter_is_called_without_it(app):
    @app.service
    class Unused(BaseService):
        pass

    @app.step
    async def plain(x):
        return x + 1

    @app.step
    def plain_sync(x, *, y=0):
        return x + y

    @app.workflow
    async def wf(services=None):
        return [
            await plain(1),
            await plain(2, services=services),  # passed but not declared: dropped
            await plain_sync(3, y=4),
            await plain_sync(5, services=services),
        ]

    assert app.run_sync("wf") == [2, 3, 7, 5]


class WithConnectors(BaseService):
    def __init__(self, connectors):
        self.seen = connectors


class WithSuper(BaseService):
    def __init__(self, connector_instances=None):
        super().__init__(connector_instances)
        self.extra = "set"


class WithoutInit(BaseService):
    pass


class WithBareInit(BaseService):
    def __init__(self):
        self.made = True


class WithAsyncInit(BaseService):
    async def _async_init(self):
        await asyncio.sleep(0)  # a real await: proves create() awaits it
        self.ready = True


def test_create_supports_every_init_shape():
    conns = {"db": object()}

    async def main():
        return [await cls.create(conns) for cls in
                (WithConnectors, WithSuper, WithoutInit, WithBareInit, WithAsyncInit)]

    a, b, c, d, e = asyncio.run(main())
    assert isinstance(a, WithConnectors) and a.seen == conns
    assert isinstance(b, WithSuper) and b.extra == "set" and b.connectors == conns
    assert isinstance(c, WithoutInit) and c.connectors == conns
    assert isinstance(d, WithBareInit) and d.made is True
    assert e.ready is True and e.connectors == conns


def test_base_init_takes_one_optional_argument():
    assert BaseService().connectors == {}
    assert BaseService({"x": 1}).connectors == {"x": 1}
    assert BaseService(connector_instances={"y": 2}).connectors == {"y": 2}


def test_every_init_shape_registers_and_is_injected(app):
    for cls in (WithConnectors, WithSuper, WithoutInit, WithBareInit, WithAsyncInit):
        assert app.service(cls) is cls

    @app.step
    async def kinds(services=None):
        return sorted(type(s).__name__ for s in services.values())

    @app.workflow
    async def wf(services=None):
        assert services["WithAsyncInit"].ready is True
        return await kinds()

    assert app.run_sync("wf") == sorted(
        ["WithConnectors", "WithSuper", "WithoutInit", "WithBareInit", "WithAsyncInit"])


def test_instance_state_persists_across_calls_and_runs(app):
    @app.service
    class Counter(BaseService):
        def __init__(self, connector_instances=None):
            super().__init__(connector_instances)
            self.n = 0

        async def incr(self):
            self.n += 1
            return self.n

        def incr_sync(self):
            self.n += 1
            return self.n

    @app.step
    async def bump(services=None):
        return await services["Counter"].incr()

    @app.step
    def bump_blocking(services=None):
        return services["Counter"].incr_sync()

    @app.workflow
    async def wf(services=None):
        return [await bump(), await bump_blocking(), await bump()]

    assert app.run_sync("wf") == [1, 2, 3]
    assert app.run_sync("wf") == [4, 5, 6]


def test_missing_service_is_a_clear_key_error(app):
    @app.service
    class Present(BaseService):
        pass

    @app.step
    async def look(services=None):
        assert services.get("Missing") is None
        return services["Missing"]

    @app.workflow
    async def wf():
        return await look()

    with pytest.raises(KeyError, match=r"Missing.*registered: Present.*@app\.service"):
        app.run_sync("wf")


def test_service_must_subclass_base_service(app):
    class NotAService:
        pass

    with pytest.raises(blazing.DefinitionError, match="BaseService"):
        app.service(NotAService)


def test_service_registered_after_start(app):
    @app.step
    async def names(services=None):
        return sorted(services)

    @app.workflow
    async def wf():
        return await names()

    assert app.run_sync("wf") == []

    @app.service  # a later notebook cell
    class Late(BaseService):
        async def _async_init(self):
            self.ready = True

    assert app.run_sync("wf") == ["Late"]
