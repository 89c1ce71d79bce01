"""The review app driven headless with Textual's pilot, as a reviewer uses it."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("textual")

from datakit.decisions import latest_decisions, read_decisions  # noqa: E402
from datakit.review.app import ReviewApp  # noqa: E402
from datakit.review.widgets import StudyList, TextScreen  # noqa: E402
from tests.review.conftest import FLAGGED, REJECTED  # noqa: E402

SIZE = (160, 48)
# textual-image reads pixels with a Pillow call Pillow has deprecated (its concern, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


async def _ready(app, pilot) -> None:
    """Wait until the detail shows the study under the cursor (the knowledge base loads in a thread, and the
    detail follows the cursor once it rests)."""
    for _ in range(200):
        await pilot.pause(0.05)
        if app.settled:
            return
    raise AssertionError("the app never showed the study under the cursor")


async def _filter(app, pilot, query: str) -> None:
    await pilot.press("slash", "ctrl+u", *query, "enter")
    await app.workers.wait_for_complete()
    await _ready(app, pilot)


def _section(app, n: int) -> str:
    return str(app.query_one(f"#section-{n}").render())


def test_move_filter_decide_quit_and_reopen(review_run):
    asyncio.run(_move_filter_decide_quit_and_reopen(review_run))


async def _move_filter_decide_quit_and_reopen(review_run):
    app = ReviewApp(review_run, reviewer="tester")
    async with app.run_test(size=SIZE) as pilot:
        await _ready(app, pilot)
        studies = app.query_one(StudyList)
        order = app.data.index["study_id"].to_list()
        assert studies.frame.height == 26 and app.detail.study_id == order[0]
        await pilot.press("down", "down", "up")
        await _ready(app, pilot)
        assert studies.current == order[1] and app.detail.study_id == order[1]

        await _filter(app, pilot, "status:rejected")
        assert studies.frame["study_id"].to_list() == [REJECTED] and app.detail.study_id == REJECTED
        assert "leaked_source" in _section(app, 2) and "[a-z] [bold]marks[/bold…" in _section(app, 2)
        assert "present, right → absent" in _section(app, 5)  # the correction, before → after

        await pilot.press("R")  # reject with a note
        await pilot.pause()
        await pilot.press(*"leaks the report [x]", "enter")
        await pilot.pause()
        assert app.log_file.latest[REJECTED]["note"] == "leaks the report [x]"
        assert "reject by tester" in str(app.query_one("#header").render())

        await _filter(app, pilot, "ground truth")  # text search runs in a thread
        assert studies.frame["study_id"].to_list() == [REJECTED]
        await _filter(app, pilot, "status:flagged")
        assert studies.current == FLAGGED
        await pilot.press("a")
        await _filter(app, pilot, "")
        assert studies.frame.height == 26
        await pilot.press("q")
    assert not app.is_running

    latest = latest_decisions(review_run)
    assert {s: r["decision"] for s, r in latest.items()} == {REJECTED: "reject", FLAGGED: "accept"}
    assert latest[REJECTED]["reviewer"] == "tester" and latest[FLAGGED]["note"] is None
    assert len(read_decisions(review_run).records) == 2

    again = ReviewApp(review_run, query="decision:any", reviewer="tester")
    async with again.run_test(size=SIZE) as pilot:
        await _ready(again, pilot)
        studies = again.query_one(StudyList)
        assert set(studies.frame["study_id"].to_list()) == {REJECTED, FLAGGED}
        await _filter(again, pilot, "decision:reject")
        assert studies.current == REJECTED
        assert "note: leaks the report [x]" in str(again.query_one("#header").render())
        await pilot.press("n", "ctrl+u", *"leaks the report", "enter")  # change the note, same decision
        await pilot.pause()
        await pilot.press("q")
    assert latest_decisions(review_run)[REJECTED]["note"] == "leaks the report"
    assert latest_decisions(review_run)[REJECTED]["decision"] == "reject"

    # export honours what was decided in the app: the rejected study is left out as rejected in review, and the
    # flagged one that was accepted is kept even when flagged traces are left out
    import datakit.export
    from datakit.config import load_config

    cfg = load_config(overrides={"export.formats": ["trl"], "export.include_flagged": False})
    result = datakit.export.run(review_run, cfg)
    exported = {json.loads(line)["study_id"] for split in ("train", "val", "test")
                for line in (review_run / "export" / "trl" / f"{split}.jsonl").read_text().splitlines()}
    assert REJECTED not in exported and FLAGGED in exported
    assert result.stats.excluded.get("rejected_in_review") == 1


def test_help_citations_and_a_bad_filter(review_run):
    asyncio.run(_help_citations_and_a_bad_filter(review_run))


async def _help_citations_and_a_bad_filter(review_run):
    app = ReviewApp(review_run, query="status:rejected", reviewer="tester")
    async with app.run_test(size=SIZE) as pilot:
        await _ready(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, TextScreen) and "decisions.jsonl" in str(app.screen.body)
        await pilot.press("escape")
        await pilot.press("c", "enter")  # the first citation of the reasoning
        await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        first = app.detail.cited()[0]
        assert app.kb.entries[first].definition.split()[0] in str(app.screen.body)
        await pilot.press("escape")
        await _filter(app, pilot, "status:maybe")  # refused: the list stays as it was
        assert app.query_one(StudyList).frame["study_id"].to_list() == [REJECTED]
        await _filter(app, pilot, "split:nowhere")
        assert app.query_one(StudyList).frame.height == 0
        assert "No study matches" in str(app.query_one("#header").render())
        await pilot.press("a")  # nothing to decide on
        await pilot.press("q")
    assert latest_decisions(review_run) == {}


def test_a_query_typed_faster_than_the_app_redraws_never_decides(review_run):
    asyncio.run(_typed_fast(review_run))


async def _typed_fast(review_run):
    from textual import events

    def queue(key: str, char: str) -> None:  # as the terminal driver hands keys over, without waiting
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)

    app = ReviewApp(review_run, reviewer="tester")
    async with app.run_test(size=SIZE) as pilot:
        await _ready(app, pilot)
        # a paste, or keys sent by tmux: every key is queued before the first is handled
        for ch in "/status:flagged":
            queue("slash" if ch == "/" else "colon" if ch == ":" else ch, ch)
        queue("enter", "\r")
        for _ in range(100):  # until the query is applied
            await pilot.pause(0.05)
            if app.flt.status == "flagged" and app.settled:
                break
        assert app.query_one("#filter").value == "status:flagged"
        assert app.query_one(StudyList).frame["study_id"].to_list() == [FLAGGED]
        await pilot.press("R")  # a note's letters are not commands either
        for ch in "a flagged note":
            queue("space" if ch == " " else ch, ch)
        queue("enter", "\r")
        for _ in range(100):  # every queued key handled before quitting
            await pilot.pause(0.05)
            if FLAGGED in app.log_file.latest and len(app.screen_stack) == 1:
                break
        await pilot.pause(0.5)  # leaving the block closes the app (quitting by key: the test above)
    assert {s: (r["decision"], r["note"]) for s, r in latest_decisions(review_run).items()} == {
        FLAGGED: ("reject", "a flagged note")}
