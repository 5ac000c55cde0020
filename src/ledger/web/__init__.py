"""The web pages' assets: Jinja2 templates and the static CSS and JavaScript.

No Python lives here but this docstring: the pages are served by
:mod:`ledger.api.page_routes`; every page is a shell whose scripts read the
public JSON API with the key its user typed in (kept in ``sessionStorage``).
"""
