"""One HTML writer for every page the pipeline writes: Jinja2 templates in
``stormcohort/report/templates/``, rendered with autoescaping (every value is escaped unless a
template says otherwise) and StrictUndefined (a name the context lacks is an error, not an
empty cell). Pages are self-contained and byte-deterministic: the same context, the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


def environment() -> Environment:
    """The Jinja2 environment of every page (callers may add their own tests and filters)."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_page(template_name: str, /, **context) -> str:
    """``templates/<template_name>`` filled with ``context``, as text."""
    return environment().get_template(template_name).render(**context)
