"""The operator console's shell (issue 8): server-rendered pages, sessions, languages.

Pages are Jinja2 templates (autoescape on) with htmx for small interactions; every
asset (htmx 2.0.11 from npm, the style sheet) is shipped in `static/`, nothing is
fetched from elsewhere. `kopilka.platform.console.routes.register(app)` mounts it: the
pages are routers (`routes.router`, `program_pages.router`, each mechanic's `pages`) whose
endpoints take the engine from the app's state (`request.app.state.engine`).
"""
