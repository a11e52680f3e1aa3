"""btop's Textual app: the frame of :mod:`blazing.monitoring.frame`, drawn with the
lines of :mod:`blazing.monitoring.render`, refreshed every second, with keys to move,
drill down, filter and pause.

Imported only when btop draws in a terminal (textual and rich come with the
``monitoring`` extra).
"""

from __future__ import annotations

import dataclasses
from datetime import timezone
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Key, Resize
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

from blazing.monitoring import render
from blazing.monitoring.frame import Frame, FrameSource, matches

SELECTABLE = ("machines", "failures", "decisions")
KEYS_LINE = "? help  q quit  ↑↓/j k move  Tab section  Enter details  / filter  p pause"
HELP = """\
blazing btop: keys

  ?          this help (any key closes it)
  q          quit (in a details view: back)
  ↑ ↓  j k   move in the selected section (» marks it, > the row)
  PgUp PgDn  move ten rows
  Tab        next section: machines, failures, decisions
  Enter      details: a failure's breadcrumbs (its run's timeline),
             a machine's workers, or every field of a decision
  /          filter failures by workflow or step name
             (Enter applies, Esc cancels)
  Esc        clear the filter (in a details view: back)
  p          pause: keep this frame (PAUSED in the title); p resumes

Lanes: depth, oldest age and in flight now; done/s over the last 10 s
and errors over the last minute, from the foremen's samples; the
sparklines: depth | done/s over the last minutes.
"""


class HelpScreen(ModalScreen[None]):
    """The keys; any key closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 76; max-width: 100%; height: auto; max-height: 100%;
                          border: ascii $foreground; padding: 0 1; background: $surface; }
    """

    def compose(self) -> ComposeResult:  # noqa: D102
        yield Static(Text(HELP), id="help")

    def on_key(self, event: Key) -> None:  # noqa: D102
        event.stop()
        self.dismiss()


class DetailScreen(Screen[None]):
    """One item drilled into: a run's timeline, a machine's workers, a decision."""

    BINDINGS = [
        Binding("escape,q,backspace,left,h", "back", "back"),
        Binding("j,down", "scroll(1)", "down", show=False),
        Binding("k,up", "scroll(-1)", "up", show=False),
        Binding("pagedown,space", "scroll(10)", show=False),
        Binding("pageup", "scroll(-10)", show=False),
    ]
    DEFAULT_CSS = """
    DetailScreen #dtitle, DetailScreen #dkeys { height: 1; }
    DetailScreen VerticalScroll { height: 1fr; }
    """

    def __init__(self, title: str, lines: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = lines

    def compose(self) -> ComposeResult:  # noqa: D102
        yield Static(Text(self.title_text, style="bold"), id="dtitle")
        with VerticalScroll(id="dscroll"):
            yield Static(Text("\n".join(self.lines)), id="dbody")
        yield Static(Text("Esc/q back  ↑↓/j k scroll  PgUp PgDn page"), id="dkeys")

    def action_back(self) -> None:  # noqa: D102
        self.dismiss()

    def action_scroll(self, rows: int) -> None:  # noqa: D102
        self.query_one("#dscroll", VerticalScroll).scroll_relative(y=rows, animate=False)


class BtopApp(App[int]):
    """The dashboard. ``source`` builds frames; it is read in a thread, never on the
    event loop, so a slow or vanished Redis does not freeze the keys."""

    AUTO_FOCUS = None  # the hidden filter box must not take the keys
    CSS = """
    Screen { layout: vertical; overflow: hidden; }
    #title, #keys { height: 1; }
    .section { height: auto; }
    #filter { dock: bottom; display: none; height: 3; }
    #small { display: none; height: 1fr; }
    """
    BINDINGS = [
        Binding("question_mark", "help", "help"),
        Binding("q", "quit_btop", "quit"),
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("pagedown", "move(10)", show=False),
        Binding("pageup", "move(-10)", show=False),
        # Priority: the screen's own Tab moves the focus, and nothing here takes it.
        Binding("tab", "section(1)", "section", priority=True),
        Binding("shift+tab", "section(-1)", show=False, priority=True),
        Binding("enter", "drill", "details"),
        Binding("slash", "filter", "filter"),
        Binding("p", "pause", "pause"),
        Binding("escape", "clear_filter", show=False),
    ]

    def __init__(self, source: FrameSource | Any, *, refresh: float = 1.0, where: str = "",
                 pattern: str = "", open_run: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.refresh_s = refresh
        self.where = where
        self.pattern = pattern
        self.raw: Frame | None = None  # the last frame read, unfiltered
        self.frame: Frame | None = None  # what is shown: the filter applied
        self.paused = False
        self.error: str | None = None
        self.section = "failures"
        self.cursor = dict.fromkeys(SELECTABLE, 0)
        self.offset = dict.fromkeys(SELECTABLE, 0)
        self.lines: dict[str, list[str]] = {}  # what each section shows (tests read it)
        self.frames_read = 0
        self.open_run = open_run
        self._fetching = False

    def compose(self) -> ComposeResult:  # noqa: D102
        yield Static(id="title")
        for name in render.SECTIONS:
            yield Static(id=name, classes="section")
        yield Static(id="small")
        yield Static(Text(KEYS_LINE), id="keys")
        yield Input(placeholder="filter failures by workflow or step name (Enter applies, "
                    "Esc cancels)", id="filter")

    def on_mount(self) -> None:  # noqa: D102
        self.set_interval(self.refresh_s, self.tick)
        self.tick()
        if self.open_run:
            self.load_run(self.open_run)

    # Reading

    def tick(self) -> None:
        """A refresh: read a new frame, unless paused or a read is still under way (a
        Redis that does not answer holds a read for its connect timeout: reads must not
        pile up behind it, one thread each)."""
        if not self.paused and not self._fetching:
            self._fetching = True
            self.fetch()

    @work(thread=True, group="fetch")
    def fetch(self) -> None:
        """Read one frame off the event loop; show it, or show why not."""
        try:
            frame = self.source.frame("")
        except Exception as exc:  # noqa: BLE001 - the dashboard stays up and says why
            self.call_from_thread(self.show_error, f"{type(exc).__name__}: {exc}")
            return
        finally:
            self._fetching = False
        self.call_from_thread(self.show_frame, frame)

    def show_frame(self, frame: Frame) -> None:
        """Take a frame read, unless paused meanwhile."""
        if self.paused and self.raw is not None:
            return
        self.raw, self.error = frame, None
        self.frames_read += 1
        self.apply()

    def show_error(self, message: str) -> None:
        """Keep the last frame and say what went wrong in the title."""
        self.error = message
        self.redraw()

    def apply(self) -> None:
        """The filter applied to the last frame read; the cursors kept in range."""
        if self.raw is None:
            return
        self.frame = dataclasses.replace(
            self.raw, failures=[f for f in self.raw.failures if matches(f.name, self.pattern)],
            filter=self.pattern)
        for name in SELECTABLE:
            self.cursor[name] = max(0, min(self.cursor[name], len(self._items(name)) - 1))
        self.redraw()

    def _items(self, name: str) -> list[Any]:
        if self.frame is None:
            return []
        return {"machines": self.frame.machines, "failures": self.frame.failures,
                "decisions": self.frame.decisions}[name]

    # Drawing

    def on_resize(self, event: Resize) -> None:  # noqa: D102
        self.redraw()

    def _title(self) -> str:
        """The title line: the frame's time and state first (they must fit in 80
        columns), where it reads last."""
        parts = ["blazing btop"]
        if self.frame is not None:
            parts.append(f"{self.frame.at.astimezone(timezone.utc):%H:%M:%S} UTC")
        if self.paused:
            parts.append("PAUSED")
        if self.pattern:
            parts.append(f"filter {self.pattern!r}")
        if self.error:
            parts.append(f"ERROR {self.error}")
        elif self.frame is None:
            parts.append("reading…")
        parts += [f"every {self.refresh_s:g}s", self.where]
        return "  ·  ".join(p for p in parts if p)

    def _rows(self, height: int) -> dict[str, int]:
        """Rows of each selectable section for a screen ``height`` lines high: machines
        and decisions up to 3 (more on a taller screen), failures the rest."""
        f = self.frame
        extra = max(height - render.MIN_HEIGHT, 0) // 3
        machines = min(max(len(f.machines) if f else 1, 1), 3 + extra)
        decisions = min(max(len(f.decisions) if f else 1, 1), 3 + extra)
        fixed = 1 + 1 + (2 + 2) + (2 + machines) + (2 + decisions) + 2  # title, keys, ...
        return {"machines": machines, "decisions": decisions,
                "failures": max(height - fixed, 1)}

    def redraw(self) -> None:
        """Draw every section for the current size, cursor and filter."""
        width, height = self.size.width, self.size.height
        small = width < render.MIN_WIDTH or height < render.MIN_HEIGHT
        for name in (*render.SECTIONS, "title", "keys"):
            self.query_one(f"#{name}").display = not small
        box = self.query_one("#small", Static)
        box.display = small
        if small:
            box.update(Text(
                f"The terminal is {width}×{height}; btop needs at least "
                f"{render.MIN_WIDTH}×{render.MIN_HEIGHT}.\nEnlarge it, or press q to quit."))
            return
        self.query_one("#title", Static).update(Text(render.clip(self._title(), width),
                                                     style="bold"))
        rows = self._rows(height)
        for name in render.SECTIONS:
            lines = self._section(name, width, rows.get(name))
            self.lines[name] = lines
            widget = self.query_one(f"#{name}", Static)
            widget.styles.height = len(lines)
            text = Text("\n".join(lines))
            text.stylize("bold", 0, len(lines[0]))  # the title; bold is decoration only
            widget.update(text)

    def _section(self, name: str, width: int, rows: int | None) -> list[str]:
        """A section's lines: its title (» when selected), header and the rows that fit
        (the cursor's row kept in view), padded to the section's height."""
        frame = self.frame
        height = 2 + (rows if rows is not None else len(frame.lanes) if frame else 2)
        focus = name == self.section
        title = render.section_title(frame, name) if frame else render.TITLES[name]
        head, body = render.table_of(frame, name, width) if frame else ("", [])
        if rows is not None and len(body) > rows:
            cur = self.cursor[name]
            off = max(min(self.offset[name], cur), cur - rows + 1)
            self.offset[name] = off = max(min(off, len(body) - rows), 0)
            title += f"  [{off + 1}-{off + rows} of {len(body)}]"
        else:
            off = self.offset[name] = 0
        out = [render.clip(("» " if focus else "  ") + title, width)]
        if frame is None:
            out.append("  reading…")
        elif not body:
            out += ["", "  " + render.EMPTY[name]]
        else:
            cursor = self.cursor[name] if focus and rows is not None else None
            marked = render.mark(body, cursor)
            out += [head, *(marked if rows is None else marked[off:off + rows])]
        return (out + [""] * height)[:height]

    # Keys

    def _on_main(self) -> bool:
        return len(self.screen_stack) == 1

    def action_quit_btop(self) -> None:  # noqa: D102
        self.exit(0)

    def action_help(self) -> None:  # noqa: D102
        if self._on_main():
            self.push_screen(HelpScreen())

    def action_move(self, rows: int) -> None:  # noqa: D102
        if not self._on_main():
            return
        n = len(self._items(self.section))
        self.cursor[self.section] = max(0, min(self.cursor[self.section] + rows, n - 1))
        self.redraw()

    def action_section(self, step: int) -> None:  # noqa: D102
        if not self._on_main() or self.query_one("#filter", Input).display:
            return
        i = SELECTABLE.index(self.section)
        self.section = SELECTABLE[(i + step) % len(SELECTABLE)]
        self.redraw()

    def action_pause(self) -> None:  # noqa: D102
        self.paused = not self.paused
        self.redraw()
        if not self.paused:
            self.tick()

    def action_filter(self) -> None:  # noqa: D102
        if not self._on_main():
            return
        box = self.query_one("#filter", Input)
        box.value = self.pattern
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:  # noqa: D102
        self.pattern = event.value.strip()
        self._close_filter()
        self.cursor["failures"] = 0
        self.apply()
        self.redraw()

    def _close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = False
        self.set_focus(None)

    def action_clear_filter(self) -> None:  # noqa: D102
        box = self.query_one("#filter", Input)
        if box.display:  # Esc in the filter box: cancel the edit
            self._close_filter()
            return
        if self.pattern:
            self.pattern = ""
            self.apply()
            self.redraw()

    def action_drill(self) -> None:  # noqa: D102
        if not self._on_main() or self.frame is None:
            return
        items = self._items(self.section)
        if not items:
            return
        item = items[self.cursor[self.section]]
        if self.section == "failures":
            self.load_run(item.unit_id)
        elif self.section == "machines":
            self.push_screen(DetailScreen(f"machine {item.host}: foreman {item.foreman}",
                                          render.machine_lines(item)))
        else:
            self.push_screen(DetailScreen(f"decision at {render.clock(item.at)} UTC",
                                          render.decision_lines(item)))

    @work(thread=True, exclusive=True, group="drill")
    def load_run(self, unit_id: str) -> None:
        """Read a run's timeline off the event loop and show it (or why it cannot be)."""
        try:
            ops, timeline = self.source.run_detail(unit_id)
            lines = render.run_lines(unit_id, ops, timeline)
        except Exception as exc:  # noqa: BLE001 - an expired run is a message, not a crash
            lines = [f"run {unit_id}: {exc}"]
        self.call_from_thread(self.push_screen,
                              DetailScreen(f"run {unit_id}: breadcrumbs", lines))
