"""The HTTP face: one FastAPI app on the daemon's web server.

``app``          the app and its server: ``POST /slack/actions`` (signed Claim clicks), and
                 the routers others give it (webhooks, ``/readyz``, ``/metrics``, ``/admin``)
``socket_mode``  Slack's Socket Mode, for a daemon that cannot take inbound HTTP
``admin/``       the admin pages (``pages.admin_router``) and ``leadpipe admin``

May import anything below it (the pipeline, routing, ops, storage). Must never be imported
by a stage; only the service and the CLI build it.
"""
