"""Routing: who gets a lead, and carrying that out.

``decide``  pure decisions: the next agent's turn, a hot lead's offer, a repeat inquiry's agent
``assign``  their effects: turns, offers, claims and timeouts stored, deliveries queued
``roster``  ``leadpipe agents``: the agents and their weights

May import the shared values and settings, ``storage``, ``notifiers`` (message shapes) and
``daemon.delivery`` (the deliveries a decision queues). Must never import reading, the
pipeline, intake, ops, web or the CLI; delivery never imports routing.
"""
