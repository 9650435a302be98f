"""leadpipe's daemon: a lead email's journey, one folder per stage.

``lead``, ``errors``          the values every part shares, and the error tree
``config``, ``logs``          settings checked at start; logging
``yamlfile``, ``terminal``    YAML with the line of every key; text safe to print
``intake/``                   emails and JSON come in and are stored raw first
``reading/``                  raw bytes to the fields of a lead (rules, mappings, the reader)
``qualifying/``               normalized and scored
``routing/``                  who gets the lead, and carrying that out
``delivery/``                 the outbox: Slack, CRMs, webhooks, alerts
``pipeline/``                 the spine: read → qualify → route, the worker, replay
``ops/``                      health, metrics, silence, stats, drift
``web/``, ``cli/``, ``service`` the faces (HTTP, command line) and the running daemon's wiring

A stage imports downwards only (``.importlinter``, checked by ``tests/test_layout.py``).
"""
