"""Providers: outside services that answer a question about a lead — geocoders, person
enrichers, and a model endpoint.

``base``       the interface (``Provider``), its published limits, what adapters share
``registry``   the geocoders and the enrichers by configured name
``census``, ``nominatim``, ``google``  one module per geocoder, each mapping the provider's
               answer to one ``daemon.lead.Geocode`` and its errors to ours
``person_http``, ``peopledatalabs``  one module per person enricher (the generic shape, People
               Data Labs), each mapping its answer to one ``daemon.lead.Enrichment``
``gate``       the per-process rate limit and hold (429, outage) of one provider
``asking``     asking without stalling the pipeline, for every kind: the daily quota, the
               inline time budget, the deferred lookups and what is done with their answers
``geocoding``, ``enrichment``  each kind's own part: its question's cache key, its cache and
               how its answer goes onto a lead
``model``      a chat-completions model endpoint (reading leads and inquiries), on the same gate

May import the shared values, errors and settings, ``storage``, ``notifiers.http`` (the HTTP
edge every outbound adapter shares) and ``daemon.delivery`` (alerts, pacing's token bucket,
the retry policy, the lead destinations a late answer updates). Must never import the
pipeline, routing, reading or a face; the pipeline and the service call it.
"""
