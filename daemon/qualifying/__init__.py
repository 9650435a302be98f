"""Qualifying: what is found becomes a canonical lead and is scored. Pure.

``normalize``  E.164 phones, checked emails, cased names, split addresses, money, intent
``scoring``    ``rules/scoring.yaml``: a lead's score and tier

May import the shared values (``daemon.lead``, ``errors``, ``yamlfile``) only. Must never
import reading, storage, notifiers or any later stage.
"""
