"""Routing: who gets a lead, and carrying that out.

``decide``        pure decisions: the next agent's turn, a hot lead's offer, a repeat inquiry's agent
``flows``         lead flows and teams: loaded and checked from the configuration, matched (pure)
``availability``  working hours in each agent's time zone, agents set away (pure)
``language``      the language of a lead's message (pure)
``check``         ``leadpipe routing check``: unreachable flows, overlapping postal codes (pure)
``assign``        their effects: turns, offers, claims and timeouts stored, deliveries queued
``response``      the Accept button and the deadline to accept (effects)
``roster``        ``leadpipe agents``: the agents and their weights

May import the shared values and settings, ``storage``, ``notifiers`` (message shapes) and
``daemon.delivery`` (the deliveries a decision queues). Must never import reading, the
pipeline, intake, ops, web or the CLI; delivery never imports routing.
"""
