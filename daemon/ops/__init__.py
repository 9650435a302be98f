"""Operations: what tells the people running leadpipe how it is doing.

``health``     ``/readyz`` and ``leadpipe status``
``heartbeat``  the running daemon's row, for ``status`` across replicas
``metrics``    Prometheus ``/metrics``
``silence``    an alert when a source that sends every day goes quiet
``stats``      ``leadpipe stats``: leads per source and tier
``drift``      an alert when a provider's template changes (near matches, new senders)

May import the pipeline's results and the stages' types, the shared values and ``storage``.
Must never be imported by the pipeline or the stages below it; intake records metrics.
"""
