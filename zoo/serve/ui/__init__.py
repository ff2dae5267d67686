"""The web UI ``zoo serve`` answers at ``/``: models, running instances, a playground, metrics.

Server-rendered pages (Jinja2 templates, ``templates/``) with a little hand-written JavaScript
(``static/``): nothing to build at install time, nothing fetched from a CDN, one origin for
the pages and the API they call. ``site.routes`` assembles the pages; ``session`` and
``access`` hold the browser-only security (login, CSRF, Host and Origin checks) that
``zoo.serve.app``'s auth middleware applies.
"""
