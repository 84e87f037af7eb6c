"""Pure routing: (caller, dialled number, customer record, config) -> which process runs the call.

Every configured rule that matches gives a *signal* naming a process and a jurisdiction (the
country of that process, of the rule or of the customer record). Then:

1. A customer record marked do-not-record always wins: the call goes to a `none` process.
2. If no rule matched, `default_process` applies.
3. If all signals name the same jurisdiction, the first matching rule (in config order) wins,
   so a German DID can choose `de-optout` even though callers from +49 default to `de`.
4. If they name different jurisdictions, that is a conflict: the strictest process wins and
   rule order breaks ties. Strictness, strictest first:
   `none` > opt-in (`de`, strict `us-all-party`) > `de-optout` > notice only (`uk`, `us-all-party`).

The decision keeps every signal considered and a readable reason, for the consent evidence.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: customers imports this module
    from controller.config import Config, Process, RoutingRule
    from controller.customers import CustomerRecord

STRICTNESS_NAMES = ("never records", "opt-in", "opt-out", "notice only")


def strictness(process: Process) -> int:
    """0 is strictest: none, then opt-in, opt-out, notice only."""
    if not process.records:
        return 0
    if process.requires_opt_in:
        return 1
    return 2 if process.pack == "de-optout" else 3


def normalise_number(raw: str | None) -> str:
    """Drop spaces and punctuation and turn a 00 international prefix into '+'.

    National formats are left alone: without a home country they cannot be made E.164.
    """
    number = re.sub(r"[\s()./-]", "", raw or "")
    return "+" + number[2:] if number.startswith("00") else number


@dataclass(frozen=True)
class Signal:
    source: str  # dialed, dialed_prefix, caller_prefix, customer.process, customer.country, default
    rule: str  # the rule as written, e.g. "routing[0] dialed=+4930100100 process=de"
    rule_index: int | None  # position in `routing`; None for the default
    process: str | None  # None when the signal names nothing usable (see note)
    jurisdiction: str | None
    note: str = ""


@dataclass(frozen=True)
class RoutingDecision:
    process: str
    pack: str
    rule: str  # the rule that decided
    caller: str
    dialed: str
    customer: dict | None  # the record's fields as seen at routing time
    signals: tuple[Signal, ...]
    conflict: bool  # signals named different jurisdictions
    reason: str
    config_version: str

    @property
    def records(self) -> bool:
        return self.pack != "none"

    def to_dict(self) -> dict:
        """A JSON-ready copy (lists, not tuples), as stored on the call's index row."""
        data = asdict(self)
        data["signals"] = [dict(signal) for signal in data["signals"]]
        return data


def route(caller: str, dialed: str, customer: CustomerRecord | None, config: Config) -> RoutingDecision:
    """Choose the process for one call; never raises for unknown numbers (default applies)."""
    caller, dialed = normalise_number(caller), normalise_number(dialed)
    signals = [s for rule in config.routing for s in _signals(rule, caller, dialed, customer, config)]
    usable = [s for s in signals if s.process is not None]
    jurisdictions = sorted({s.jurisdiction for s in usable if s.jurisdiction})
    conflict = len(jurisdictions) > 1

    def decide(process_name: str, rule: str, reason: str) -> RoutingDecision:
        process = config.processes[process_name]
        return RoutingDecision(
            process=process_name, pack=process.pack, rule=rule, caller=caller, dialed=dialed,
            customer=asdict(customer) if customer is not None else None, signals=tuple(signals),
            conflict=conflict, reason=reason, config_version=config.config_version)

    if customer is not None and customer.do_not_record:
        target = _never_record_process(config)
        return decide(target, "customer.do_not_record",
                      f"customer {customer.phone} is marked do-not-record: {target} (never records)")
    if not usable:
        signals.append(Signal("default", "default_process", None, config.default_process,
                              config.processes[config.default_process].country))
        return decide(config.default_process, "default_process",
                      f"no routing rule matched caller {caller or '(none)'} and dialed {dialed or '(none)'}: "
                      f"default_process {config.default_process}")
    if not conflict:
        winner = usable[0]
        return decide(winner.process, winner.rule, f"{winner.rule} matched first: {winner.process}")
    ranked = sorted(usable, key=lambda s: (strictness(config.processes[s.process]), s.rule_index))
    winner = ranked[0]
    level = strictness(config.processes[winner.process])
    ties = [s for s in ranked[1:] if strictness(config.processes[s.process]) == level and s.process != winner.process]
    tie_note = f"; tie with {', '.join(s.process for s in ties)} broken by rule order" if ties else ""
    return decide(winner.process, winner.rule,
                  f"conflicting jurisdictions {', '.join(jurisdictions)} from "
                  + "; ".join(f"{s.rule} -> {s.process}" for s in usable)
                  + f": the strictest wins, {winner.process} ({STRICTNESS_NAMES[level]}){tie_note}")


def _signals(rule: RoutingRule, caller: str, dialed: str, customer: CustomerRecord | None,
             config: Config) -> list[Signal]:
    if rule.matcher == "customer":
        return [_customer_signal(rule, customer, config)] if customer is not None else []
    subject = caller if rule.matcher == "caller_prefix" else dialed
    matched = subject == rule.value if rule.matcher == "dialed" else subject.startswith(rule.value)
    if not matched:
        return []
    if rule.process is not None:
        return [Signal(rule.matcher, rule.describe(), rule.index, rule.process,
                       config.processes[rule.process].country)]
    process = config.process_for_country(rule.country)
    note = "" if process else f"no jurisdiction configured for {rule.country}"
    return [Signal(rule.matcher, rule.describe(), rule.index, process, rule.country, note)]


def _customer_signal(rule: RoutingRule, customer: CustomerRecord, config: Config) -> Signal:
    description = f"{rule.describe()} phone={customer.phone}"
    if customer.process:
        if customer.process not in config.processes:
            return Signal("customer.process", description, rule.index, None, customer.country,
                          f"the record's process {customer.process} is not configured")
        process = config.processes[customer.process]
        return Signal("customer.process", description, rule.index, customer.process,
                      customer.country or process.country)
    if not customer.country:
        return Signal("customer.country", description, rule.index, None, None, "the record names no country")
    process_name = config.process_for_country(customer.country)
    note = "" if process_name else f"no jurisdiction configured for {customer.country}"
    return Signal("customer.country", description, rule.index, process_name, customer.country, note)


def _never_record_process(config: Config) -> str:
    """The default process if it never records, else the first `none` process (config ensures one)."""
    if not config.processes[config.default_process].records:
        return config.default_process
    return next(p.name for p in config.processes.values() if not p.records)
