"""The spine: read → qualify → route, the worker that runs it over stored emails, replay.

``engine``   the rules directory loaded as one (rules, mappings, vocabulary, scoring)
``parse``    one email or webhook body to a lead, dead letter or ignored verdict (pure)
``worker``   the worker over pending stored emails, storing and routing each outcome; replay
``reload``   rule files watched and the engine swapped while the daemon runs
``authoring`` ``leadpipe rules new`` / ``promote``: a rule drafted from an email, run here

May import the stages it calls — ``daemon.reading``, ``daemon.qualifying``,
``daemon.routing`` (the worker routes each new lead in its transaction) — with
``storage`` and the shared values. Must never be imported by those stages: only intake,
ops, web, the CLI and the service call the pipeline.
"""

from daemon.pipeline.engine import Engine
from daemon.pipeline.parse import parse_email, parse_stored, parse_webhook
from daemon.pipeline.worker import Processed, Replayed, Worker, replay, store_outcome

__all__ = ["Engine", "Processed", "Replayed", "Worker", "parse_email", "parse_stored", "parse_webhook",
           "replay", "store_outcome"]
