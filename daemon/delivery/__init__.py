"""Delivery: the outbox. Every outbound call is a row first, then a delivery with retries.

``dispatch``  the outbox dispatcher: notifiers called, retried with backoff, dead deliveries
``pacing``    rate limits per notifier
``alerts``    the tech channel: dead letters, dead deliveries, outages (once each)
``history``   what was delivered, retried or died: ``leadpipe deliveries`` reads it

May import the shared values and settings, ``storage`` and ``notifiers``. Must never import
routing, reading, the pipeline, intake, ops, web or the CLI.
"""
