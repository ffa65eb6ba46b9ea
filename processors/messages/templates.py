"""Jinja2 templates per trigger, channel and locale (``templates/<locale>/``).

Each trigger has one template per locale, ``<trigger>.j2``, that extends the channel's
layout ``_<channel>.j2`` of the same locale and fills its blocks: ``subject`` (e-mail
subject, push and in-app title), ``text`` (e-mail and in-app body), ``short`` (push and
SMS) and ``products_heading``. A file ``<trigger>.<channel>.j2`` in a locale, when
present, replaces that combination entirely. Undefined variables are errors, so a
template that names something the message does not carry fails its test, not a customer.
Output is plain text (no HTML escaping).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateNotFound


@dataclass(frozen=True, slots=True)
class Rendered:
    template: str
    subject: str | None
    body: str


class Templates:
    """Renders messages; ``locales`` are the directories shipped (``en``, ``pt``)."""

    def __init__(self, default_locale: str = "en") -> None:
        self.env = Environment(loader=PackageLoader("processors.messages", "templates"), undefined=StrictUndefined,
                               trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=False)
        names = self.env.list_templates(extensions=["j2"])
        self.locales = sorted({name.split("/", 1)[0] for name in names})
        self._names = set(names)
        self.default_locale = default_locale if default_locale in self.locales else self.locales[0]

    def locale_for(self, wanted: str | None) -> str:
        """``wanted`` when templates exist for it (``pt-BR`` matches ``pt``), else the default locale."""
        if wanted:
            base = wanted.replace("_", "-").split("-", 1)[0].lower()
            if base in self.locales:
                return base
        return self.default_locale

    def render(self, trigger: str, channel: str, locale: str, variables: dict[str, Any]) -> Rendered:
        """The subject (None for SMS) and body of ``trigger`` on ``channel`` in ``locale``."""
        name = f"{locale}/{trigger}.{channel}.j2"
        if name not in self._names:
            name = f"{locale}/{trigger}.j2"
        if name not in self._names:
            raise TemplateNotFound(name)
        template = self.env.get_template(name)
        context = {**variables, "trigger": trigger, "channel": channel, "locale": locale}
        body = "\n".join(line.rstrip() for line in template.render(context).strip().splitlines())
        subject = None
        if channel != "sms" and "subject" in template.blocks:
            subject = "".join(template.blocks["subject"](template.new_context(context))).strip()
        return Rendered(name, subject, body)
