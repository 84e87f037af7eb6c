"""The retention rules as command options, on top of the configuration's `retention:` section.

`--tag-days TAG=DAYS|+DAYS|-DAYS` and `--purpose-days PURPOSE=DAYS`, both repeatable; see
controller.admin.retention for how they combine. The command receives them as `rules`.
"""

from __future__ import annotations

import functools

import click

from controller.admin.retention import RetentionError, RetentionRules, parse_purpose_rule, parse_tag_rule


def _parsed(parse):
    def callback(ctx, param, value):
        try:
            return [parse(text) for text in value]
        except RetentionError as exc:
            raise click.BadParameter(str(exc)) from exc
    return callback


def retention_options(fn):
    """--tag-days and --purpose-days, delivered to the command as one RetentionRules `rules`."""
    @functools.wraps(fn)
    def with_rules(*args, tag_days, purpose_days, **kwargs):
        return fn(*args, rules=RetentionRules(dict(purpose_days), tuple(tag_days)), **kwargs)
    with_rules = click.option("--purpose-days", multiple=True, metavar="PURPOSE=DAYS",
                              callback=_parsed(parse_purpose_rule),
                              help="Keep recordings with this purpose DAYS days (instead of the process's days).")(
        with_rules)
    return click.option("--tag-days", multiple=True, metavar="TAG=[+|-]DAYS", callback=_parsed(parse_tag_rule),
                        help="A tag sets (730) or moves (+365, -30) the retention; repeatable.")(with_rules)
