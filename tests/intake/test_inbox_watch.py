"""The directory inbox takes a file only once it is whole (daemon/intake/inbox_watch.py).

When these fail, a slow writer (a script, a copy over a network share) that pauses
mid-way gets half an email stored and routed as a lead whose message stops mid-word, and
the rest of the file is moved to ``processed/`` and never read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import daemonkit
import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from daemon.intake.inbox import DirectoryInbox
from daemon.intake.inbox_watch import QUIET_AFTER_CREATE, Completion, InboxWatch, is_email_path
from daemon.lead import Lead
from daemon.pipeline import Engine, parse_email
from storage.db import Database
from storage.models import InboundEmail, LeadRow

REPO = Path(__file__).resolve().parents[2]
EMAIL = REPO / "fixtures" / "emails" / "realtor" / "text_layout.eml"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stat_of(path: Path) -> os.stat_result:
    return path.stat()


# -- the whole daemon -------------------------------------------------------------------


@pytest.fixture
def daemon_dir(tmp_path: Path) -> Iterator[Path]:
    workdir = tmp_path / "run"
    (workdir / "inbox").mkdir(parents=True)
    shutil.copytree(REPO / "rules", workdir / "rules")
    # A short poll, so a daemon that takes files as soon as it sees them would see the
    # first piece many times over during the pause.
    (workdir / "leadpipe.yaml").write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{workdir}/lp.db", "poll_interval": "0.2s",
        "web": {"enabled": False}}), encoding="utf-8")
    yield workdir


def start_daemon(workdir: Path) -> daemonkit.Daemon:
    daemon = daemonkit.start(workdir)
    wait_for(lambda: "leadpipe running" in daemon.text(), daemon.proc, workdir, "the daemon to start")
    return daemon


def wait_for(predicate, proc: subprocess.Popen[bytes], workdir: Path, what: str,
             timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        log = (workdir / "daemon.log").read_text(errors="replace")
        if proc.poll() is not None:
            pytest.fail(f"the daemon exited ({proc.returncode}) waiting for {what}\n{log[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}\n{log[-4000:]}")
        time.sleep(0.1)


def test_a_file_written_in_two_pieces_5s_apart_is_one_lead_with_the_whole_message(daemon_dir: Path):
    """The writer holds the file open through a 5 s pause between the two pieces: the
    daemon stores one email, the whole file, and routes one lead with the whole message."""
    data = EMAIL.read_bytes()
    engine = Engine.load(daemon_dir / "rules")
    whole = parse_email(data, engine)
    assert isinstance(whole, Lead) and whole.message
    cut = data.index(whole.message[:30].encode()) + len(whole.message) // 2  # mid-message
    half = parse_email(data[:cut], engine)
    assert getattr(half, "message", None) != whole.message  # the first piece alone is not it

    daemon = start_daemon(daemon_dir)
    proc = daemon.proc
    try:
        with open(daemon_dir / "inbox" / "lead.eml", "wb") as f:
            f.write(data[:cut])
            f.flush()
            os.fsync(f.fileno())
            time.sleep(5)  # the writer's pause, the file held open
            f.write(data[cut:])
        db = create_engine(f"sqlite:///{daemon_dir}/lp.db", poolclass=NullPool)
        try:
            def routed() -> bool:
                with db.connect() as c:
                    return c.execute(select(LeadRow.id)).first() is not None
            wait_for(routed, proc, daemon_dir, "the lead")
            wait_for(lambda: not (daemon_dir / "inbox" / "lead.eml").exists(), proc, daemon_dir,
                     "the file to be moved")
            with db.connect() as c:
                emails = c.execute(select(InboundEmail.raw)).scalars().all()
                messages = c.execute(select(LeadRow.message)).scalars().all()
        finally:
            db.dispose()
    finally:
        daemon.stop()
    assert emails == [data], "stored a piece of the file, or the file more than once"
    assert messages == [whole.message]


# -- real inotify events ----------------------------------------------------------------


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Completion, threading.Event]]:
    root = tmp_path / "inbox"
    # A maildir's folders exist before the daemon starts (inotify watches a folder made
    # later only once it has seen it made, and may miss what happens in it before).
    (root / "tmp").mkdir(parents=True)
    (root / "new").mkdir()
    ready = threading.Event()
    completion = Completion(settle=3600)  # nothing is taken for being unchanged here
    watch = InboxWatch(root, completion, on_ready=ready.set)
    if not watch.start():
        pytest.skip("no inotify on this system")
    try:
        yield root, completion, ready
    finally:
        watch.stop()


def test_a_file_open_for_writing_is_not_taken_and_its_close_wakes_the_inbox(watched):
    root, completion, ready = watched
    inbox = DirectoryInbox(root, completion)
    path = root / "slow.eml"
    with open(path, "wb") as f:
        f.write(b"Subject: half")
        f.flush()
        assert [p for p in inbox.pending_files() if completion.is_complete(p, stat_of(p))] == []
        assert not ready.is_set()
    assert ready.wait(30), "closing the file did not wake the inbox"
    assert completion.is_complete(path, stat_of(path))


def test_a_dot_file_renamed_into_place_is_taken_at_once(watched):
    root, completion, ready = watched
    dot = root / ".incoming.eml"
    dot.write_bytes(b"Subject: whole\n\nbody\n")
    assert list(DirectoryInbox(root).pending_files()) == []  # a dot-file is never taken
    ready.clear()
    os.rename(dot, root / "lead.eml")
    assert ready.wait(30), "the rename did not wake the inbox"
    assert completion.is_complete(root / "lead.eml", stat_of(root / "lead.eml"))


def test_a_file_moved_in_from_another_folder_is_taken_without_waiting_out_the_settle_time(
        watched, tmp_path: Path):
    """``mv ~/lead.eml inbox/``: inotify reports it only as created, and nothing follows."""
    root, completion, _ = watched
    outside = tmp_path / "lead.eml"
    outside.write_bytes(b"Subject: whole\n\nbody\n")
    os.rename(outside, root / "lead.eml")
    deadline = time.monotonic() + 30
    while not completion.is_complete(root / "lead.eml", stat_of(root / "lead.eml")):
        assert time.monotonic() < deadline, "a file moved in waited for the settle time (an hour here)"
        time.sleep(0.1)


def test_a_maildir_tmp_to_new_rename_is_taken_and_tmp_never_is(watched):
    root, completion, ready = watched
    work = root / "tmp" / "1764680000.M1P2.host"
    work.write_bytes(b"Subject: whole\n\nbody\n")
    inbox = DirectoryInbox(root, completion)
    assert list(inbox.pending_files()) == []  # tmp/ is a writer's work in progress
    os.rename(work, root / "new" / work.name)
    assert ready.wait(30)
    assert list(inbox.pending_files()) == [root / "new" / work.name]
    assert completion.is_complete(root / "new" / work.name, stat_of(root / "new" / work.name))


# -- the decision, on a clock of our own --------------------------------------------------


def test_without_events_a_file_is_taken_only_once_unchanged_for_the_settle_time(tmp_path: Path):
    """A network share's writer on another machine gives no inotify event."""
    clock = Clock()
    c = Completion(settle=10, clock=clock)
    path = tmp_path / "share.eml"
    path.write_bytes(b"Subject: first piece")
    assert not c.is_complete(path, stat_of(path))
    clock.now += 9
    assert not c.is_complete(path, stat_of(path))
    with open(path, "ab") as f:  # the writer goes on: the settle time starts again
        f.write(b" and the second piece, a little longer")
    clock.now += 2
    assert not c.is_complete(path, stat_of(path))
    clock.now += 9.5
    assert not c.is_complete(path, stat_of(path))
    clock.now += 1
    assert c.is_complete(path, stat_of(path))


def test_events_decide_before_the_settle_time(tmp_path: Path):
    clock = Clock()
    c = Completion(settle=10, clock=clock)
    path = tmp_path / "a.eml"
    path.write_bytes(b"Subject: x")
    c.created(str(path))
    c.opened(str(path))
    c.modified(str(path))
    clock.now += 3600  # a writer holding the file open is waited for, however long
    assert not c.is_complete(path, stat_of(path))
    c.closed(str(path))
    assert c.is_complete(path, stat_of(path))

    # moved in from outside the inbox: reported only as created; whole once quiet
    moved = tmp_path / "b.eml"
    moved.write_bytes(b"Subject: y")
    c.created(str(moved))
    assert not c.is_complete(moved, stat_of(moved))
    clock.now += QUIET_AFTER_CREATE
    assert c.is_complete(moved, stat_of(moved))

    # a reader opening and closing a complete file changes nothing
    c.opened(str(path))
    c.closed_unwritten(str(path))
    assert c.is_complete(path, stat_of(path))


def test_which_paths_the_inbox_takes(tmp_path: Path):
    root = tmp_path
    takes = ["a.eml", "zillow/b.eml", "new/1764680000.M1P2.host", "box/new/x"]
    leaves = [".a.eml", "a.eml.part", "tmp/a.eml", "new/.x", "processed/a.eml", ".git/a.eml",
              "box/tmp/x", "cur/x"]
    assert [p for p in takes if not is_email_path(root, root / p)] == []
    assert [p for p in leaves if is_email_path(root, root / p)] == []


def test_run_once_without_a_watcher_still_takes_every_file_present(tmp_path: Path):
    """``run --once`` is run when the writers are done; it does not wait out a settle time."""
    root = tmp_path / "inbox"
    root.mkdir()
    shutil.copy(EMAIL, root / "lead.eml")
    db = Database(f"sqlite:///{tmp_path}/lp.db")
    db.upgrade()
    try:
        assert len(DirectoryInbox(root).collect(db)) == 1
    finally:
        db.dispose()
