"""Reading: from raw bytes to the fields of a lead. Pure: an email (or a JSON body) and
the rules in, found values out — no database, no network, no clock.

``message``, ``htmltext``   a MIME view of one email; HTML parsed and seen as text
``sources``                 what email rules and webhook mappings share (fields, filters)
``rules``, ``parsing``      email rules (``rules/SOURCE.yaml``) and the engine that runs one
``mappings``                webhook mappings (``rules/webhooks/SOURCE.yaml``) over JSON
``reader``, ``candidates``  any email's fields read from its structure, and the choice
``layout``, ``values``      label layouts and zones; cleaning values, names, streets
``vocabulary``              ``labels.yaml``: labels understood by their words
``senders``, ``triage``     who sent and received an email; lead or not
``draft``, ``goldens``      a rule drafted from an email; golden files of expected leads

May import the shared values and settings (``daemon.lead``, ``errors``, ``config``,
``yamlfile``) and ``daemon.qualifying`` (a candidate phone or email counts only if it
normalizes). Must never import storage, notifiers, routing, delivery, the pipeline, intake,
ops, web or the CLI; the pipeline calls reading, never the other way round.
"""
