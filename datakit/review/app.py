"""``datakit review``: a full-screen Textual app to read a run's traces and decide on each one.

Left, the study list (filtered by a query, paged from the index); right, the detail of the study under the
cursor: its images drawn in the terminal, report and labels, failed checks, perception by region, reasoning with
its citations (pick one to read the entry), reflection. Every decision is on disk before the next key is read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

# textual-image asks the terminal what it can draw (Kitty graphics, Sixel) when imported: before the app starts
from textual_image.widget import Image as TerminalImage  # isort: skip

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from datakit.errors import DatakitError
from datakit.review.data import Filter, ReviewData, parse_query
from datakit.review.decisions import DecisionLog
from datakit.review.detail import SECTIONS, StudyDetail, build_detail, entry_view, header
from datakit.review.widgets import NoteScreen, StudyList, TextScreen

HELP = """\
Moving
  ↑ ↓ / j k       previous / next study          PgUp PgDn / space   a screenful
  g / G           first / last study             Tab / Shift+Tab     list → detail → citations
  click           pick a study                   c                   the reasoning's citations (Enter: the entry)

Deciding (written to RUN/review/decisions.jsonl at once; the last decision for a study wins)
  a               accept, then the next study    A   accept with a note
  r               reject, then the next study    R   reject with a note
  f               flag, then the next study      F   flag with a note
  n               change the note of this study's decision

Filtering  (/ to type a query, Enter to apply, Escape back to the list; an empty query shows everything)
  split:train|val|test          status:passed|rejected|flagged|unvalidated (validation)
  decision:accept|reject|flag|none|any        code:CODE (a failed check code or check name)
  label:NAME[=1|0|-1|none]      teacher:offline|llm        corrections:yes|no
  any other words               text search in the trace and the report (case-insensitive)
  e.g.   status:rejected code:leaked_source split:test     label:pleural_effusion=-1 corrections:yes

Other
  ?   this help        q   quit
"""


# how long the cursor must rest on a study before its detail is read and drawn
SETTLE_S = 0.06


REVIEW_ACTIONS = {"decide", "note", "citations", "focus_filter", "help"}


class ReviewApp(App[None]):
    """The review app over one run."""

    TITLE = "datakit review"
    CSS = """
    #left { width: 46; }
    #filter { height: 3; }
    #count { height: 2; padding: 0 1; color: $text-muted; }
    #detail { padding: 0 1; }
    #images { height: auto; max-height: 22; }
    #images > Vertical { width: auto; height: auto; margin-right: 2; }
    .xray { width: auto; height: 18; }
    .caption { width: auto; height: 1; }
    .section-title { text-style: bold; color: $accent; margin-top: 1; }
    .checks-rejected { border-left: thick $error; padding-left: 1; }
    .checks-flagged { border-left: thick $warning; padding-left: 1; }
    #citations { height: auto; max-height: 12; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        # priority: handled as the key arrives, so keys queued behind it (a paste, tmux) already go to the filter
        Binding("slash", "focus_filter", "Filter", priority=True),
        Binding("a", "decide('accept')", "Accept"),
        Binding("r", "decide('reject')", "Reject"),
        Binding("f", "decide('flag')", "Flag"),
        Binding("A", "decide('accept', True)", "Accept+note", show=False),
        Binding("R", "decide('reject', True)", "Reject+note", show=False),
        Binding("F", "decide('flag', True)", "Flag+note", show=False),
        Binding("n", "note", "Note"),
        Binding("c", "citations", "Citations"),
    ]

    def __init__(self, run: str | Path, *, data: ReviewData | None = None, kb: Any = None,
                 query: str = "", reviewer: str | None = None) -> None:
        super().__init__()
        self.started = time.perf_counter()
        self.data = data or ReviewData(run, defer=True)
        self.run_root = self.data.run.root
        self.log_file = DecisionLog(self.data.run, reviewer)
        self.kb = kb
        self.flt: Filter = parse_query(query)
        self.detail: StudyDetail | None = None
        self.ready_seconds: float | None = None  # open → first detail on screen (the benchmark reads it)
        self._pending: Any = None
        self._image_shape: list[bool] = []  # the timer that shows the detail once the cursor rests
        self.sub_title = str(self.run_root)

    # layout ----------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:  # noqa: D102
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield Input(value=self.flt.describe(), placeholder="filter: / then e.g. status:rejected split:test",
                            id="filter")
                yield StudyList(self.log_file.latest, id="studies")
                yield Static(id="count")
            with VerticalScroll(id="detail"):
                yield Static(id="header")
                yield Static(Text("Images", style="bold"), classes="section-title")
                yield Horizontal(id="images")
                for n, (title, _) in enumerate(SECTIONS[1:], 1):
                    yield Static(Text(title), classes="section-title")
                    yield Static(id=f"section-{n}")
                    if title == "Reasoning":
                        yield Static(Text("Citations (Enter on one shows the entry)"), classes="section-title")
                        yield OptionList(id="citations")
        yield Footer()

    def on_mount(self) -> None:  # noqa: D102
        self.set_focus(self.query_one(StudyList))
        if self.data.loaded:
            self._apply(self.flt)
        else:
            self.query_one("#count", Static).update(Text("reading the run …", style="yellow"))
            self._load_index()
        if self.kb is None:
            self._load_kb()

    @work(thread=True, exclusive=True, group="index")
    def _load_index(self) -> None:
        self.data.load()
        self.call_from_thread(self._apply, self.flt)

    @work(thread=True, exclusive=True, group="kb")
    def _load_kb(self) -> None:
        from datakit.config import resolve_config
        from datakit.knowledge import load_configured

        kb = load_configured(resolve_config(self.data.run.config_path))
        self.call_from_thread(self._kb_ready, kb)

    def _kb_ready(self, kb: Any) -> None:
        self.kb = kb
        if self.data.loaded:
            self._show(self.query_one(StudyList).current)

    # the list --------------------------------------------------------------------------------------------
    def _apply(self, flt: Filter) -> None:
        if not self.data.loaded:
            self.flt = flt  # applied when the index is read
            return
        needs_scan = flt.text is not None or flt.corrections is not None
        if needs_scan:
            self.query_one("#count", Static).update(Text("searching the traces …", style="yellow"))
            self._select_in_thread(flt)
        else:
            self._selected(flt, self.data.select(flt, self.log_file.latest))

    @work(thread=True, exclusive=True, group="filter")
    def _select_in_thread(self, flt: Filter) -> None:
        frame = self.data.select(flt, self.log_file.latest)
        self.call_from_thread(self._selected, flt, frame)

    def _selected(self, flt: Filter, frame: Any) -> None:
        self.flt = flt
        studies = self.query_one(StudyList)
        studies.show(frame, keep=studies.current)
        self._update_count()
        if not frame.height:
            self._show(None)

    def _update_count(self) -> None:
        if not self.data.loaded:
            return
        c = self.data.counts()
        studies = self.query_one(StudyList)
        decided = len(self.log_file.latest)
        t = Text()
        t.append(f"{studies.frame.height:,}", style="bold").append(f" of {c['traces']:,} shown")
        if studies.frame.height:
            t.append(f" · at {studies.cursor + 1:,}")
        t.append("\n")
        t.append(f"✗ {c['rejected']:,} ", style="red").append(f"! {c['flagged']:,} ", style="yellow")
        t.append(f"✓ {c['passed']:,} ", style="green").append(f"· reviewed {decided:,}", style="cyan")
        self.query_one("#count", Static).update(t)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            flt = parse_query(event.value)
        except DatakitError as err:
            self.notify(f"{err}" + (f"\n{err.hint}" if err.hint else ""), severity="error", markup=False)
            return
        self._apply(flt)
        self.set_focus(self.query_one(StudyList))

    def on_key(self, event: Any) -> None:  # noqa: D102
        if event.key == "escape" and isinstance(self.focused, Input):
            self.set_focus(self.query_one(StudyList))
            event.stop()

    def on_study_list_highlighted(self, message: StudyList.Highlighted) -> None:  # noqa: D102
        # the list moves at once; the detail follows when the cursor rests, so holding a key never queues reads
        self._update_count()
        if self._pending is not None:
            self._pending.stop()
        if self.detail is None:
            self._show(message.study_id)
        else:
            self._pending = self.set_timer(SETTLE_S, lambda: self._show(message.study_id))

    @property
    def settled(self) -> bool:
        """Whether the detail shows the study under the cursor (tests and the benchmark wait for it)."""
        current = self.query_one(StudyList).current
        if not self.data.loaded:
            return False
        return (self.detail.study_id if self.detail else None) == current and (current is None or self.kb is not None)

    # the detail ------------------------------------------------------------------------------------------
    def _show(self, study_id: str | None) -> None:
        self._pending = None
        if study_id is None:
            self._image_shape = []
            self.detail = None
            self.query_one("#header", Static).update(Text("No study matches the filter.", style="yellow"))
            for n in range(1, len(SECTIONS)):
                self.query_one(f"#section-{n}", Static).update("")
            self.query_one("#images").remove_children()
            self.query_one("#citations", OptionList).clear_options()
            return
        if self.kb is None:
            self.query_one("#header", Static).update(Text(f"Study {study_id} (loading the knowledge base …)"))
            return
        d = build_detail(self.data, study_id, self.kb, self.log_file.latest)
        self.detail = d
        self.query_one("#header", Static).update(header(d))
        for n, (_title, make) in enumerate(SECTIONS[1:], 1):
            widget = self.query_one(f"#section-{n}", Static)
            widget.update(make(d))
            if _title == "Checks":
                widget.set_classes(f"checks-{d.status}")
        self._show_images(d)
        cites = self.query_one("#citations", OptionList)
        cites.clear_options()
        for entry_id in d.cited():
            e = d.entries.get(entry_id)
            label = Text.assemble((entry_id, "cyan"), " ", (e.name if e else "not in the knowledge base", "dim"))
            cites.add_option(Option(label, id=entry_id))
        self.query_one("#detail", VerticalScroll).scroll_home(animate=False)
        if self.ready_seconds is None:
            self.ready_seconds = time.perf_counter() - self.started

    def _show_images(self, d: StudyDetail) -> None:
        box = self.query_one("#images", Horizontal)
        images = []
        for img in d.record.get("images") or []:
            path = self.run_root / img["converted_path"] if img.get("converted_path") else None
            caption = Text(f"{img.get('view') or '?'}  {img.get('image_id', '')[:17]}", style="dim")
            images.append((str(path) if path is not None and path.is_file() else None, caption))
        shape = [p is not None for p, _ in images]
        if shape and shape == self._image_shape:  # same layout as the last study: swap the pictures only
            for (path, caption), cell in zip(images, box.children, strict=True):
                if path is not None:
                    cell.query_one(TerminalImage).image = path
                cell.query_one(".caption", Static).update(caption)
            return
        self._image_shape = shape
        box.remove_children()
        cells = []
        for path, caption in images:
            first = TerminalImage(path, classes="xray") if path else Static(Text("(no converted image)", style="dim"))
            cells.append(Vertical(first, Static(caption, classes="caption")))
        box.mount_all(cells or [Static(Text("no images", style="dim"))])

    @on(OptionList.OptionSelected, "#citations")
    def _citation(self, event: OptionList.OptionSelected) -> None:
        entry = self.detail.entries.get(event.option.id) if self.detail else None
        if entry is None:
            self.notify(f"{event.option.id} is not in the knowledge base", severity="warning", markup=False)
            return
        self.push_screen(TextScreen(entry_view(entry), name="entry"))

    # decisions -------------------------------------------------------------------------------------------
    def action_decide(self, decision: str, with_note: bool = False) -> None:
        """Record a decision on the current study (asking for a note first when ``with_note``)."""
        studies = self.query_one(StudyList)
        study_id = studies.current
        if study_id is None:
            return
        if with_note:
            old = (self.log_file.latest.get(study_id) or {}).get("note") or ""
            self.push_screen(NoteScreen(f"{decision} {study_id}: note", old),
                             lambda note: note is not None and self._record(study_id, decision, note))
        else:
            self._record(study_id, decision, None)

    def action_note(self) -> None:
        """Change the note of the current study's decision."""
        study_id = self.query_one(StudyList).current
        if study_id is None:
            return
        latest = self.log_file.latest.get(study_id)
        if latest is None:
            self.notify("decide first (a, r or f; A, R or F with a note)", severity="warning")
            return
        self.push_screen(NoteScreen(f"note on {latest['decision']} {study_id}", latest.get("note") or ""),
                         lambda note: note is not None and self._record(study_id, latest["decision"], note,
                                                                        advance=False))

    def _record(self, study_id: str, decision: str, note: str | None, advance: bool = True) -> None:
        self.log_file.record(study_id, decision, note)
        studies = self.query_one(StudyList)
        studies.refresh()
        if advance and studies.current == study_id and studies.cursor + 1 < studies.frame.height:
            studies.move_to(studies.cursor + 1)
        else:
            self._update_count()
            if studies.current == study_id:
                self._show(study_id)

    # other keys ------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:  # noqa: D102
        # over a note, an entry or the help, the app's keys are off: letters typed there never decide anything
        if action in REVIEW_ACTIONS and len(self.screen_stack) > 1:
            return False
        return True

    def action_help(self) -> None:
        """Show the keys and the filter syntax."""
        self.push_screen(TextScreen(Text(HELP), name="help"))

    def action_focus_filter(self) -> None:
        """Type a filter query."""
        box = self.query_one("#filter", Input)
        if self.focused is box:  # a / typed in the query itself
            box.insert_text_at_cursor("/")
            return
        # at once, not after the keys already queued: a query typed fast must not reach the list as commands
        self.set_focus(box)

    def action_citations(self) -> None:
        """Go to the reasoning's citations."""
        cites = self.query_one("#citations", OptionList)
        if cites.option_count and cites.highlighted is None:
            cites.highlighted = 0
        self.set_focus(cites)


def run_app(run: str | Path, query: str = "") -> None:
    """Open the review app on ``run`` (blocks until the reviewer quits)."""
    # a missing table or a bad --filter is an error before the terminal is taken over
    ReviewApp(run, data=ReviewData(run, defer=True), query=query).run()
