"""The admin pages: leads, dead letters, deliveries, sources and the audit log, served by
the daemon's web server under ``/admin`` (server-rendered, no JavaScript).

``daemon.web.admin.pages.admin_router(Admin(db, settings, engine=…, router=…, wake=…))`` is the
``APIRouter`` that ``daemon/web/app.py`` mounts; ``daemon/service.py`` builds it when
``admin:`` has a user or a token. ``daemon.web.admin.commands`` adds ``leadpipe admin``.
(Nothing is imported here, so the command line does not load the web stack.)
"""
