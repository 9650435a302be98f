"""The IMAP source: watch one mailbox folder and hand every email to the inbox exactly once.

``MailboxWatcher(settings, db).run(stop)`` connects (TLS, STARTTLS or, on loopback,
plain), logs in with a password or XOAUTH2, and then loops until ``stop`` is set:

1. catch up: every message whose UID is above the stored ``last_uid`` is fetched with
   ``BODY.PEEK[]`` in batches of ``fetch_batch`` (fewer when they are big: a batch stays
   under ``fetch_batch_bytes`` by RFC822.SIZE), handed to ``inbox.accept`` (which
   commits it), *then* marked on the server (MOVE to ``processed_folder``, or
   COPY + ``\\Deleted`` + UID EXPUNGE, or the ``processed_keyword``), and only then is
   ``last_uid`` moved forward. A crash anywhere in between refetches the batch; the
   inbox recognises what it already stored, so nothing is processed twice.
2. wait: IDLE where the server offers it, ended after ``min(poll_interval,
   idle_timeout)`` so a catch-up also runs on a timer (the safety net for anything
   IDLE missed, and well inside the 29 minutes of RFC 2177); plain polling every
   ``poll_interval`` where it does not.

A changed UIDVALIDITY (folder recreated, server migrated) starts a resync: the folder's
messages are fetched again and ``accept`` recognises the ones already stored by
Message-ID plus content hash. Any network or server error closes the connection and
reconnects with capped exponential backoff and full jitter; each outage is logged once
when it starts and once when it ends, and is recorded in ``mailbox_state`` (with the
last contact, for ``leadpipe status``); an outage longer than ``alert_after`` is alerted
once. ``check(settings)`` is the ``doctor`` probe.

``connection``  connecting and logging in, ``check`` (``MailboxReport``), selecting the
                folder, and every error worded as a ``MailboxError`` that says what to do
``oauth``       the XOAUTH2 token, given or printed by ``oauth2_token_command``
``idle``        waiting on the open connection: IDLE, select() on the socket, ``stop``
``positions``   the UIDVALIDITY and last UID kept in the ``mailboxes`` table, and the plan
                of a catch-up from them (new mail, first run by ``start_from``, resync)
``fetch``       a catch-up's UIDs batch by batch: fetch, store, mark, then advance
``progress``    a catch-up's progress lines and terminal bar
``outages``     last contact, outages logged, recorded and alerted once; the ``Backoff``
``watcher``     ``MailboxWatcher``: the loop that ties them together

May import ``daemon.lead``, ``daemon.errors``, ``daemon.config``, ``storage``, and
``daemon.intake.inbox`` (raw emails are stored first, through it). Must never be
imported by reading, qualifying, routing or delivery: only the service and the CLI
start or probe a mailbox.
"""

from daemon.intake.imap.connection import MailboxReport, check, connect, describe, select_folder
from daemon.intake.imap.fetch import StoreBatch
from daemon.intake.imap.outages import AlertHook, Backoff
from daemon.intake.imap.watcher import Clock, MailboxWatcher

__all__ = ["AlertHook", "Backoff", "Clock", "MailboxReport", "MailboxWatcher", "StoreBatch", "check",
           "connect", "describe", "select_folder"]
