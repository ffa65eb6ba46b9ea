"""The rule registry finds rule modules by their ``SPECS``; a trigger the enum lacks, or declared twice, is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.triggers.rules import SPECS, discover

MODULE = '''
from dataclasses import dataclass
from processors.triggers.rules.base import RuleSpec
from processors.triggers.rules.win_back import WinBack, WinBackRule

SPECS = (RuleSpec({trigger!r}, WinBack(), lambda section, config: WinBackRule(section)),)
'''


def _package(root: Path, name: str, modules: dict[str, str]) -> str:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("SPECS = 'never read: base is skipped'\n")
    for module, text in modules.items():
        (package / f"{module}.py").write_text(text)
    return name


def test_the_registry_is_the_shipped_modules_in_the_enums_order() -> None:
    prefix = len("processors.triggers.rules.")
    assert [(spec.trigger, spec.defaults.__module__[prefix:]) for spec in SPECS] == [
        ("cart_abandoned", "cart"), ("browse_abandoned", "browse"), ("checkout_abandoned", "checkout"),
        ("high_intent", "bands"), ("churn_risk", "bands"), ("unhappy_customer", "unhappy"),
        ("review_request", "post_purchase"), ("welcome", "post_purchase"), ("win_back", "win_back")]


def test_discover_orders_by_the_enum_not_by_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _package(tmp_path, "rules_order", {"a_welcome": MODULE.format(trigger="welcome"),
                                               "b_cart": MODULE.format(trigger="cart_abandoned"), "c_none": "X = 1\n"})
    assert [spec.trigger for spec in discover(name)] == ["cart_abandoned", "welcome"]


def test_a_trigger_the_enum_lacks_is_refused_naming_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _package(tmp_path, "rules_unknown", {"price": MODULE.format(trigger="price_drop")})
    with pytest.raises(ValueError, match=r"rules_unknown\.price declares trigger 'price_drop', which is not a value "
                                         r"of schemas\.outputs\.TriggerType"):
        discover(name)


def test_a_trigger_declared_twice_is_refused_naming_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _package(tmp_path, "rules_twice", {"one": MODULE.format(trigger="welcome"),
                                              "two": MODULE.format(trigger="welcome")})
    with pytest.raises(ValueError, match=r"'welcome' is declared by both rules_twice\.one and rules_twice\.two"):
        discover(name)
