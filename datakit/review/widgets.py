"""The review app's own widgets: the virtual study list and the modal screens (note, entry, help)."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

STATUS_MARK = {"passed": ("✓", "green"), "rejected": ("✗", "bold red"), "flagged": ("!", "bold yellow"),
               "unvalidated": ("·", "dim")}
DECISION_MARK = {"accept": ("A", "bold green"), "reject": ("R", "bold red"), "flag": ("F", "bold yellow")}


class StudyList(ScrollView, can_focus=True):
    """The filtered studies, drawn line by line: only the rows on screen are ever read from the index."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
    ]
    DEFAULT_CSS = "StudyList { height: 1fr; } StudyList:focus { border: tall $accent; }"

    class Highlighted(Message):
        """The cursor is on a new study (None when the list is empty)."""

        def __init__(self, study_id: str | None) -> None:
            super().__init__()
            self.study_id = study_id

    def __init__(self, decisions: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frame = pl.DataFrame({"study_id": []}, schema={"study_id": pl.Utf8})
        self.decisions = decisions
        self.cursor = 0
        self._page: tuple[int, list[dict[str, Any]]] = (-1, [])

    # data ------------------------------------------------------------------------------------------------
    def show(self, frame: pl.DataFrame, keep: str | None = None) -> None:
        """Show these index rows; the cursor stays on ``keep`` when it is among them, else goes to the top."""
        self.frame = frame
        self._page = (-1, [])
        self.virtual_size = Size(self.size.width or 40, frame.height)
        cursor = 0
        if keep is not None and frame.height:
            hit = frame.select(pl.arg_where(pl.col("study_id") == keep)).to_series()
            cursor = int(hit[0]) if len(hit) else 0
        self.move_to(cursor, force=True)

    @property
    def current(self) -> str | None:
        """The study id under the cursor."""
        if not self.frame.height:
            return None
        return self.frame["study_id"][self.cursor]

    def _rows(self, top: int) -> list[dict[str, Any]]:
        """The rows from ``top`` for one screen, read once per scroll position."""
        if self._page[0] != top:
            cols = [c for c in ("study_id", "split", "status", "codes", "teacher") if c in self.frame.columns]
            self._page = (top, self.frame.slice(top, max(self.size.height, 1) + 1).select(cols).to_dicts())
        return self._page[1]

    # drawing ---------------------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:  # noqa: D102
        top = self.scroll_offset.y
        index = top + y
        width = self.size.width
        rows = self._rows(top)
        if index >= self.frame.height or y >= len(rows):
            return Strip.blank(width)
        row = rows[y]
        mark, mark_style = STATUS_MARK.get(row.get("status") or "", ("?", ""))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{mark} ", style=mark_style)
        dec = self.decisions.get(row["study_id"])
        d, d_style = DECISION_MARK.get(dec["decision"], (" ", "")) if dec else (" ", "")
        text.append(f"{d} ", style=d_style)
        text.append(str(row["study_id"]))
        text.append(f" {row.get('split') or '':5}", style="dim")
        codes = row.get("codes") or []
        if codes:
            text.append(" " + ",".join(codes), style=mark_style)
        base = Style(bgcolor="rgb(40,70,120)", bold=True) if index == self.cursor else Style()
        segments = [Segment(s.text, base + s.style if s.style else base) for s in text.render(self.app.console)
                    if s.text != "\n"]
        return Strip(segments).crop_extend(0, width, base)

    # moving ----------------------------------------------------------------------------------------------
    def move_to(self, index: int, force: bool = False) -> None:
        """Put the cursor on row ``index`` (clamped), scroll it into view and say which study it is on."""
        n = self.frame.height
        index = max(0, min(index, n - 1)) if n else 0
        if index == self.cursor and not force:
            return
        self.cursor = index
        height = max(self.size.height, 1)
        top = self.scroll_offset.y
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(self.current))

    def action_move(self, delta: int) -> None:
        """Move the cursor up or down."""
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move by a screenful."""
        self.move_to(self.cursor + direction * max(self.size.height - 1, 1))

    def action_jump(self, index: int) -> None:
        """Go to the first or (-1) last study."""
        self.move_to(self.frame.height - 1 if index < 0 else index)

    def on_click(self, event: events.Click) -> None:  # noqa: D102
        self.move_to(self.scroll_offset.y + event.y)

    def on_resize(self, event: events.Resize) -> None:  # noqa: D102
        self.virtual_size = Size(event.size.width, self.frame.height)
        self._page = (-1, [])

    def refresh_row(self, index: int) -> None:
        """Redraw one row (its decision changed)."""
        self.refresh(Region(0, index - self.scroll_offset.y, self.size.width, 1))


class NoteScreen(ModalScreen[str | None]):
    """Ask for a note; Enter keeps it, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#note"
    DEFAULT_CSS = """
    NoteScreen { align: center middle; }
    NoteScreen > Vertical { width: 80; height: auto; border: thick $accent; padding: 1 2; background: $surface; }
    """

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:  # noqa: D102
        with Vertical():
            yield Static(Text(self.title_text, style="bold"))
            yield Input(value=self.value, placeholder="what you saw (Enter to save, Escape to cancel)", id="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:  # noqa: D102
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Close without a note."""
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """A scrollable text over the app (a knowledge entry, the help); Escape or q closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]
    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll { width: 90%; max-width: 110; height: 85%; border: thick $accent;
                                  padding: 1 2; background: $surface; }
    """

    def __init__(self, body: Text, name: str | None = None) -> None:
        super().__init__(name=name)
        self.body = body

    def compose(self) -> ComposeResult:  # noqa: D102
        with VerticalScroll():
            yield Static(self.body)

    def action_close(self) -> None:
        """Back to the app."""
        self.dismiss(None)
