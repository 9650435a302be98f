"""Qualifying: what is found becomes a canonical lead and is scored. Pure.

``normalize``  E.164 phones, checked emails, cased names, split addresses, money, intent
``address``    the address checked against the offline USPS ZIP code database
``intent``     the inquiry reader: intent, urgency, financing facts, timeline from the message
``inquiry``    the inquiry on the lead: the built-in reading, and a model's where one is asked
``timeline``   the time phrases of a message ("by Feb", "next spring") as days from a given day
``scoring``    ``rules/scoring.yaml``: a lead's score and tier

May import the shared values (``daemon.lead``, ``errors``, ``yamlfile``) only. Must never
import reading, storage, notifiers or any later stage.
"""
