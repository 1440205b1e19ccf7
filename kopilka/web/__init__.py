"""The web face of Kopilka (issue 8): the operator console, server-rendered.

Pages are Jinja2 templates (autoescape on) with htmx for small interactions; every
asset (htmx 2.0.11 from npm, the style sheet) is shipped in `static/`, nothing is
fetched from elsewhere. `kopilka.web.routes.register(app, engine)` mounts it.
"""
