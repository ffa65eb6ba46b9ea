"""Adding a trigger rule touches four kinds of place, and that is enough: the README walk-through, proven.

The test copies ``processors/`` and ``schemas/`` to a temporary directory and adds a throwaway rule,
``wishlist_reminder``, there by the walk-through's steps only: the enum value (``schemas/outputs.py``),
the rule module with its config dataclass (``processors/triggers/rules/wishlist_reminder.py``), its
``rules.toml`` section and a template per language. It checks that the copy differs from the project
in exactly those files, then runs the copy in a fresh interpreter (its packages first on the path) and
shows the rule wired end to end in process: the config loads the section (and still refuses an unknown
key by name), the registry builds the rule in the enum's order, the trigger processor fires it from its
timer (and an add to cart cancels it), and the message processor renders its template with the
default cooldown (none: a second reminder is not blocked) and goals (none). Pure logic, no broker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TRIGGER = "wishlist_reminder"

RULE = '''\
"""Wishlist reminder (a throwaway rule of the add-a-rule test): a wishlist add and no cart add for ``after_minutes``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from processors.features.base import MINUTE_MS, Observed
from processors.triggers.records import Fired
from processors.triggers.rules.base import RuleBase, RuleSpec
from processors.triggers.state import TriggerState
from processors.triggers.timers import Timer, arm, cancel, is_slot


@dataclass(frozen=True)
class WishlistReminder:
    enabled: bool = True
    after_minutes: int = 60


class WishlistReminderRule(RuleBase):
    name = "wishlist_reminder"
    topics: ClassVar[frozenset[str]] = frozenset({"clickstream"})

    def __init__(self, config: WishlistReminder) -> None:
        self.enabled = config.enabled
        self.after_ms = config.after_minutes * MINUTE_MS

    def on_event(self, state: TriggerState, seen: Observed) -> list[Fired]:
        if seen.type == "add_to_wishlist":
            arm(state.timers, Timer(self.name, "wishlist", seen.t_ms, seen.event_id, seen.t_ms + self.after_ms,
                                    (seen.event.product_id,), {"reason": "wished for and not added to the cart"}))
        elif seen.type == "add_to_cart":
            cancel(state.timers, is_slot("wishlist"), seen.t_ms)
        return []


SPECS = (RuleSpec("wishlist_reminder", WishlistReminder(), lambda section, config: WishlistReminderRule(section)),)
'''

TEMPLATE = '''\
{% extends locale ~ "/_" ~ channel ~ ".j2" %}
{% block subject %}WISH-SUBJECT{% endblock %}
{% block text %}WISH-TEXT {{ products | join(",") }}{% endblock %}
{% block products_heading %}WISH-PRODUCTS{% endblock %}
{% block short %}WISH-SHORT{% endblock %}
'''

#: Runs in the copy: its processors/ and schemas/ come first on the path, the project's tests/ and streams/ after.
SCRIPT = textwrap.dedent('''
    import dataclasses, json, sys
    import processors, schemas
    assert processors.__file__.startswith(sys.argv[1]) and schemas.__file__.startswith(sys.argv[1])
    from processors.config_file import ConfigError
    from processors.messages.config import load_messages_config, Holdout
    from processors.messages.processor import MessagesProcessor
    from processors.triggers.config import RulesConfig, load_rules, rules_from_dict
    from processors.triggers.processor import TriggersProcessor
    from processors.triggers.rules import default_rules
    from tests.processors.messages.helpers import pipeline
    from tests.processors.triggers.helpers import at, event, iso

    out = {}
    config = load_rules()
    out["after_minutes"] = [RulesConfig().wishlist_reminder.after_minutes, config.wishlist_reminder.after_minutes]
    out["rules"] = [rule.name for rule in default_rules(config)]
    try:
        rules_from_dict({"wishlist_reminder": {"after_minute": 1}})
    except ConfigError as exc:
        out["unknown_key"] = str(exc)
    messages_config = dataclasses.replace(load_messages_config(), holdout=Holdout(share=0.0))
    out["cooldown_ms"] = messages_config.cooldown_ms("wishlist_reminder")
    out["goals"] = list(messages_config.goals_of("wishlist_reminder"))
    records = [event("add_to_wishlist", at(0), "c1", product_id="p1"),
               event("add_to_wishlist", at(0), "c2", product_id="p2"),
               event("add_to_cart", at(10), "c2", product_id="p2"),
               event("page_view", at(16), "c1"),
               event("add_to_wishlist", at(20), "c1", product_id="p3"),
               event("page_view", at(36), "c1")]
    triggers, made = pipeline(records, TriggersProcessor(config), MessagesProcessor(messages_config))
    out["triggers"] = [[json.loads(v)[k] for k in ("customer_id", "trigger", "fired_at", "fired_by", "products")]
                       for _, _, v in triggers]
    out["at"] = [iso(at(15)), iso(at(35))]
    decided = [json.loads(v) for t, _, v in made if t == "message-decisions"]
    out["cooldown"] = [[d["guard"], d["outcome"]] for d in decided if d["guard"] == "cooldown"]
    out["messages"] = [[m[k] for k in ("customer_id", "trigger", "channel", "template", "body")]
                       for m in (json.loads(v) for t, _, v in made if t == "messages")]
    from tests.processors.triggers.test_rule_wiring import missing_code

    out["missing"] = missing_code("wishlist_reminder")
    print(json.dumps(out))
''')


def _add_the_rule(copy: Path) -> set[str]:
    """The walk-through's steps, applied to ``copy``; returns the paths written."""
    outputs = copy / "schemas" / "outputs.py"
    text = outputs.read_text()
    enum = re.search(r"TriggerType = Literal\[\n(.*?)\]", text, re.S)
    assert enum is not None
    outputs.write_text(text.replace(enum.group(1), enum.group(1) + f'    "{TRIGGER}",\n'))
    (copy / "processors" / "triggers" / "rules" / f"{TRIGGER}.py").write_text(RULE)
    rules_toml = copy / "processors" / "triggers" / "rules.toml"
    rules_toml.write_text(rules_toml.read_text() + f"\n[{TRIGGER}]\nenabled = true\nafter_minutes = 15\n")
    written = {"schemas/outputs.py", f"processors/triggers/rules/{TRIGGER}.py", "processors/triggers/rules.toml"}
    templates = copy / "processors" / "messages" / "templates"
    for language in sorted(p.name for p in templates.iterdir() if p.is_dir()):
        (templates / language / f"{TRIGGER}.j2").write_text(TEMPLATE)
        written.add(f"processors/messages/templates/{language}/{TRIGGER}.j2")
    return written


def _files(top: Path) -> dict[str, bytes]:
    return {p.relative_to(top).as_posix(): p.read_bytes() for package in ("processors", "schemas")
            for p in (top / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_a_new_rule_in_four_kinds_of_place_is_wired_end_to_end(tmp_path: Path) -> None:
    for package in ("processors", "schemas"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    written = _add_the_rule(tmp_path)
    before, after = _files(ROOT), _files(tmp_path)
    changed = {path for path in after if before.get(path) != after[path]}
    assert changed == written and set(before) <= set(after)
    assert written == {"schemas/outputs.py", "processors/triggers/rules/wishlist_reminder.py",
                       "processors/triggers/rules.toml", "processors/messages/templates/en/wishlist_reminder.j2",
                       "processors/messages/templates/pt/wishlist_reminder.j2"}

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["missing"] == []
    assert out["after_minutes"] == [60, 15]  # the dataclass default, then the rules.toml section's value
    assert out["rules"] == ["cart_abandoned", "browse_abandoned", "checkout_abandoned", "high_intent", "churn_risk",
                            "unhappy_customer", "review_request", "welcome", "win_back", TRIGGER]
    assert out["unknown_key"] == ("[wishlist_reminder] unknown parameter 'after_minute' "
                                  "(known: after_minutes, enabled)")
    assert (out["cooldown_ms"], out["goals"]) == (0, [])
    first, second = out["at"]
    assert out["triggers"] == [["c1", TRIGGER, first, "timer", ["p1"]], ["c1", TRIGGER, second, "timer", ["p3"]]]
    assert out["cooldown"] == [["cooldown", "passed"], ["cooldown", "passed"]]  # no cooldown: the second goes too
    assert [m[:4] for m in out["messages"]] == [["c1", TRIGGER, "in_app", f"en/{TRIGGER}.j2"]] * 2
    assert [m[4].splitlines()[0] for m in out["messages"]] == ["WISH-TEXT p1", "WISH-TEXT p3"]


def test_the_project_itself_has_no_such_rule() -> None:
    """The rule above exists only in the copy: the project's registry and enum are untouched by the test."""
    import typing

    from processors.triggers.rules import SPECS
    from schemas.outputs import TriggerType

    assert TRIGGER not in typing.get_args(TriggerType) and TRIGGER not in {spec.trigger for spec in SPECS}
