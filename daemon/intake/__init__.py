"""Intake: where emails and JSON come in. Each source stores the raw bytes first
(``storage.inbound``) and only then acknowledges them, so a crash loses nothing.

``imap/``        watch a mailbox folder over IMAP, exactly once through crashes
``inbox``        the directory inbox (``./inbox``), and storing raw emails for every source
``inbox_watch``  when a file dropped in the directory inbox is complete
``webhooks``     ``POST /webhooks/{source}``: JSON leads, authenticated, stored, then parsed

May import the shared values and settings, ``storage``, ``daemon.ops`` (metrics) and the
pipeline (the webhook endpoint parses what it stored). Must never be imported by reading,
qualifying, routing, delivery or the pipeline: only the service and the CLI start a source.
"""
