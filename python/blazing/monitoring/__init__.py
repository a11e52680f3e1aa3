"""Operator tools over the inspector: ``btop``, a terminal dashboard, and the foreman
charts (terminal, PNG, HTML).

    python -m blazing.monitoring.btop                    (blazing btop)
    python -m blazing.monitoring.monitor_foreman_charts  (blazing charts)

Everything here reads through :class:`blazing.inspector.Inspector`. The third-party
packages (textual, rich, plotext, matplotlib) come with the ``monitoring`` extra and
are imported only by the tool that draws with them (see :mod:`blazing.monitoring.deps`),
so ``import blazing`` and the other commands never need them.
"""
