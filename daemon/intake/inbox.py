"""Where emails come in: storing raw bytes first, and the directory inbox.

Every source (the directory inbox here, the IMAP watcher, the webhook endpoint, the
``ingest`` command) hands its bytes to ``accept``, which commits them to
``inbound_emails`` before the source may consider them taken. The pipeline worker picks
up whatever is pending; sources never parse leads themselves.
"""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from daemon.intake.inbox_watch import Completion, is_email_path
from daemon.lead import Origin, RawEmail
from storage import inbound
from storage.db import Database

log = logging.getLogger(__name__)

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def headers_of(data: bytes) -> inbound.InboundHeaders:
    """Message-ID, Subject and sender of a raw email, read from its header block only.

    Never raises: broken headers give ``None`` values.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    # Only the header block: the parser would otherwise walk the whole body line by line.
    block = data[: end + 4] if 0 <= end < 256 * 1024 else data[: 256 * 1024]
    try:
        msg = _HEADER_PARSER.parsebytes(block)
        message_id = _header_text(msg.get("Message-ID"))
        subject = _header_text(msg.get("Subject"))
        sender = _header_text(msg.get("From"))
    except Exception:  # isolation boundary: a header we cannot read is stored without it
        return inbound.InboundHeaders(None, None, None)
    return inbound.InboundHeaders(
        message_id=message_id.strip() if message_id else None,
        subject=subject,
        sender=sender,
    )


def _header_text(value: object) -> str | None:
    if value is None:
        return None
    try:
        decoded = str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # undecodable RFC 2047 words: keep the raw text
        decoded = str(value)
    decoded = " ".join(decoded.replace("\x00", "").split())  # PostgreSQL text holds no NUL
    return decoded or None


def accept_many(db: Database, raws: Sequence[RawEmail]) -> list[inbound.Stored]:
    """Store each email (once) in one transaction and commit.

    After this returns the emails cannot be lost, and only then may a source mark them
    taken (move them on the IMAP server, move the file). One commit per batch instead of
    per email roughly halves the cost of taking in a backlog.
    """
    with db.session() as s:
        return [inbound.store(s, raw, headers_of(raw.data)) for raw in raws]


def accept(db: Database, raw: RawEmail) -> inbound.Stored:
    """Store ``raw`` (once) and commit. After this returns, the email cannot be lost."""
    stored = accept_many(db, [raw])[0]
    if stored.created:
        log.info("stored email #%s from %s (%d bytes)", stored.id, _where(raw), len(raw.data))
    else:
        log.info("email from %s is already stored as #%s; not stored again", _where(raw), stored.id)
    return stored


def _where(raw: RawEmail) -> str:
    if raw.uid is not None:
        return f"{raw.mailbox}/{raw.folder} uid {raw.uid}"
    return raw.path or raw.origin.value


def read_file(path: Path, origin: Origin = Origin.CLI) -> RawEmail:
    """A RawEmail for an ``.eml`` file; its modification time is when it was received."""
    data = path.read_bytes()
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return RawEmail(data=data, origin=origin, received_at=mtime, path=str(path))


@dataclass(frozen=True)
class DirectoryInbox:
    """A folder of ``.eml`` files: each new file is stored, then moved to ``processed/``.

    Subfolders are read too (except ``processed/`` itself), so a folder tree of
    fixtures can be copied in as it is. Dot-files and ``tmp/`` folders are a writer's work
    in progress and are left alone; any file in a maildir ``new/`` folder is taken.
    With a ``completion`` (the running daemon's, daemon/intake/inbox_watch.py) a file is taken
    only once it is complete; without one (``run --once``) every file present is.
    """

    root: Path
    completion: Completion | None = None

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    def pending_files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            here = Path(dirpath)
            if here == self.root and "processed" in dirnames:
                dirnames.remove("processed")
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "tmp")
            for name in sorted(filenames):
                if is_email_path(self.root, here / name):
                    yield here / name

    def collect(self, db: Database) -> list[inbound.Stored]:
        """Store every pending file that is complete and move it out of the way. Returns
        what was stored.

        A file is moved only after its bytes are committed; a file that cannot be read
        stays where it is and is tried again next time.
        """
        results = []
        for path in self.pending_files():
            try:
                if self.completion is not None and not self.completion.is_complete(path, path.stat()):
                    continue
                raw = read_file(path, Origin.DIRECTORY)
            except FileNotFoundError:  # gone between the listing and now (renamed, taken)
                continue
            except OSError as exc:
                log.warning("cannot read %s: %s; will try again", path, exc.strerror)
                continue
            results.append(accept(db, raw))
            self._move(path)
            if self.completion is not None:
                self.completion.taken(path)
        return results

    def _move(self, path: Path) -> None:
        target = self.processed / path.relative_to(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            stem, n = target.stem, 1
            while target.exists():
                target = target.with_name(f"{stem}.{n}{target.suffix}")
                n += 1
        shutil.move(str(path), target)

