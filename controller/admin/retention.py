"""Retention rules (pure): when a recording expires, from its process, its purpose and its tags.

The base is the process's `retention_days`, or a purpose rule (`PURPOSE=DAYS`) when one names the
process's purpose. A tag rule either sets the days (`complaint=730`) or moves them (`complaint=+365`,
`training=-60`). When several tag rules match, the longest result wins: a dispute that needs the audio
outweighs a tag that would shorten it. Days never go below 0. A recording whose process keeps no
retention (`retention_days` unset) or is no longer configured never expires here.

Nothing is stored: expiry is computed at purge time from the live configuration, so changing a setting
applies to existing recordings on the next purge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from controller.errors import ConsentlineError

__all__ = ["RetentionError", "RetentionRules", "TagRule", "expires_at", "parse_purpose_rule", "parse_tag_rule",
           "retention_days"]

_DAYS = re.compile(r"([+-]?)([0-9]{1,5})")
_MAX_DAYS = 36500


class RetentionError(ConsentlineError):
    """A retention rule is malformed."""


@dataclass(frozen=True)
class TagRule:
    """`days` replaces the base, or with `relative` is added to it (negative shortens)."""

    tag: str
    days: int
    relative: bool = False

    def apply(self, base_days: int) -> int:
        return max(0, base_days + self.days if self.relative else self.days)

    def __str__(self) -> str:
        return f"{self.tag}={'%+d' % self.days if self.relative else self.days}"


@dataclass(frozen=True)
class RetentionRules:
    purpose_days: Mapping[str, int] = field(default_factory=dict)
    tag_rules: tuple[TagRule, ...] = ()

    def describe(self) -> dict:
        return {"purpose_days": dict(self.purpose_days), "tag_rules": [str(rule) for rule in self.tag_rules]}

    def shortest_possible_days(self, base_days: int) -> int:
        """A lower bound on any recording's retention with this base (to preselect purge candidates)."""
        return min([base_days, *(rule.apply(base_days) for rule in self.tag_rules)])


def parse_tag_rule(text: str) -> TagRule:
    """"complaint=+365" -> TagRule("complaint", 365, relative=True); raises RetentionError."""
    from controller.tags import TagError, normalise_tag  # noqa: PLC0415  (kept lazy: tags pulls in the index)

    name, sep, value = text.rpartition("=")
    match = _DAYS.fullmatch(value.strip())
    if not sep or not match or int(match.group(2)) > _MAX_DAYS:
        raise RetentionError(f"tag rule: expected TAG=DAYS, TAG=+DAYS or TAG=-DAYS (days up to {_MAX_DAYS}), "
                             f"got {text!r}")
    try:
        tag = normalise_tag(name)
    except TagError as exc:
        raise RetentionError(f"tag rule {text!r}: {exc}") from exc
    sign, days = match.group(1), int(match.group(2))
    return TagRule(tag, -days if sign == "-" else days, relative=bool(sign))


def parse_purpose_rule(text: str) -> tuple[str, int]:
    """"quality assurance and training=30" -> ("quality assurance and training", 30)."""
    purpose, sep, value = text.rpartition("=")
    if not sep or not purpose.strip() or not value.strip().isdigit() or int(value) > _MAX_DAYS:
        raise RetentionError(f"purpose rule: expected PURPOSE=DAYS (days from 0 to {_MAX_DAYS}), got {text!r}")
    return purpose.strip(), int(value)


def retention_days(process_days: int | None, purpose: str | None, tags: Iterable[str],
                   rules: RetentionRules) -> int | None:
    """How many days a recording is kept; None: no retention limit applies."""
    base = rules.purpose_days.get(purpose) if purpose is not None else None
    if base is None:
        base = process_days
    if base is None:
        return None
    tag_set = set(tags)
    matched = [rule.apply(base) for rule in rules.tag_rules if rule.tag in tag_set]
    return max(matched) if matched else base


def expires_at(opened_at: datetime, days: int | None) -> datetime | None:
    return None if days is None else opened_at + timedelta(days=days)


def rules_from_config(raw: Mapping) -> RetentionRules:
    """The configuration's `retention:` section: `{tag_days: {complaint: "+365", test: 30}, purpose_days:
    {"quality assurance and training": 60}}`. Raises RetentionError naming the key."""
    unknown = set(raw) - {"tag_days", "purpose_days"}
    if unknown:
        raise RetentionError(f"retention.{sorted(unknown)[0]}: expected tag_days or purpose_days")
    tag_rules = []
    for tag, days in dict(raw.get("tag_days") or {}).items():
        try:
            tag_rules.append(parse_tag_rule(f"{tag}={days}"))
        except RetentionError as exc:
            raise RetentionError(f"retention.tag_days.{tag}: {exc}") from exc
    purpose_days = {}
    for purpose, days in dict(raw.get("purpose_days") or {}).items():
        try:
            purpose_days.update([parse_purpose_rule(f"{purpose}={days}")])
        except RetentionError as exc:
            raise RetentionError(f"retention.purpose_days.{purpose}: {exc}") from exc
    return RetentionRules(purpose_days, tuple(tag_rules))


def merged(configured: RetentionRules, given: RetentionRules) -> RetentionRules:
    """Command options on top of the configuration: an option for the same tag or purpose wins."""
    given_tags = {rule.tag for rule in given.tag_rules}
    return RetentionRules({**configured.purpose_days, **given.purpose_days},
                          tuple(r for r in configured.tag_rules if r.tag not in given_tags) + given.tag_rules)
