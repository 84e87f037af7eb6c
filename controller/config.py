"""Load the YAML configuration into frozen dataclasses, validating every key.

Every problem is reported as `<file>:<line>: <dotted.path>: expected <what>, got <what>`, and all
problems in a file are reported together in one `ConfigError`. Legal but doubtful settings become
warnings (`Config.warnings`). The YAML is composed into nodes first so that line numbers survive
and an unquoted `NO` (which YAML reads as false) can be shown as the user wrote it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from controller.configyaml import (Bad, Node, Section, Tree, boolean, check, choice, country, dtmf_code, dtmf_key,
                                  e164_prefix, free_mapping, integer, listen_address, name, number, phone_number,
                                  text, version, yaml_root)
from controller.errors import ConfigError

__all__ = [
    "Config", "ConfigError", "ConsentSettings", "ControllerSettings", "EslSettings", "Process", "Prompt",
    "RoutingRule", "WithdrawalSettings", "load_config", "GAP_MODES", "LAWFUL_BASES", "ON_WITHDRAW", "PACKS",
    "PERMISSIONS", "UK_PURPOSES", "PROMPT_IDS", "INDEX_FILENAME",
]

INDEX_FILENAME = "consentline.db"

PACKS = ("de", "de-optout", "uk", "us-all-party", "none")
GAP_MODES = ("skip", "silence", "tone", "noise")
ON_WITHDRAW = ("purge", "keep")
LAWFUL_BASES = ("consent", "contract", "legal-obligation", "vital-interests", "public-task", "legitimate-interests")
# The business purposes for which UK law permits recording without consent (Investigatory
# Powers (Interception by Businesses etc.) Regulations 2018, reg. 3).
UK_PURPOSES = ("establish-facts", "regulatory-compliance", "quality-standards", "national-security",
               "crime-prevention", "unauthorised-use", "system-operation")
PERMISSIONS = ("tag", "flag", "pause_own", "pause_others", "resume", "stop", "cut", "delete", "listen",
               "export", "legal_hold_apply", "legal_hold_release", "purge", "erase")

# Prompt ids each pack must have (first set) and may have (second set); strict
# us-all-party also needs "consent".
PROMPT_IDS = {
    "de": ({"consent"}, {"agreed", "declined", "withdrawn"}),
    "de-optout": ({"optout"}, {"declined", "withdrawn"}),
    "uk": ({"notice"}, {"withdrawn"}),
    "us-all-party": ({"notice"}, {"consent", "agreed", "declined", "withdrawn"}),
    "none": (set(), {"notice"}),
}
ROUTING_MATCHERS = ("dialed", "dialed_prefix", "caller_prefix", "customer")


@dataclass(frozen=True)
class Prompt:
    id: str
    path: Path  # absolute: the controller hands it to FreeSWITCH as is
    sha256: str  # of the file's bytes at load time, kept as consent evidence


@dataclass(frozen=True)
class ConsentSettings:
    agree_key: str = "1"
    decline_key: str = "2"
    optout_key: str = "1"
    timeout_s: float = 5.0
    attempts: int = 1


@dataclass(frozen=True)
class WithdrawalSettings:
    code: str | None = "*9"  # None: callers cannot withdraw mid-call
    on_withdraw: str = "purge"  # purge what was kept, or keep it up to the withdrawal


@dataclass(frozen=True)
class Process:
    name: str
    pack: str
    country: str | None
    prompts: Mapping[str, Prompt]
    consent: ConsentSettings
    strict: bool
    purpose: str | None
    lawful_basis: str | None
    retention_days: int | None
    gap: str
    hold_back_s: float
    record_ivr: bool
    record_queue: bool
    record_hold: bool
    agent: str
    withdrawal: WithdrawalSettings
    agent_codes: Mapping[str, Any]

    @property
    def records(self) -> bool:
        """False only for the `none` pack, which never records."""
        return self.pack != "none"

    @property
    def requires_opt_in(self) -> bool:
        """True where recording needs the caller's agree key (de, strict us-all-party)."""
        return self.pack == "de" or (self.pack == "us-all-party" and self.strict)


@dataclass(frozen=True)
class RoutingRule:
    index: int
    matcher: str  # one of ROUTING_MATCHERS
    value: str | None  # the number or prefix; None for a customer rule
    process: str | None  # the process named by the rule, or ...
    country: str | None  # ... a country looked up in `jurisdictions`
    line: int

    def describe(self) -> str:
        if self.matcher == "customer":
            return f"routing[{self.index}] customer"
        target = f"process={self.process}" if self.process else f"country={self.country}"
        return f"routing[{self.index}] {self.matcher}={self.value} {target}"


@dataclass(frozen=True)
class EslSettings:
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = "ClueCon"


@dataclass(frozen=True)
class ControllerSettings:
    listen_host: str
    listen_port: int
    esl: EslSettings
    data_dir: Path
    spool_dir: Path
    recordings_dir: Path

    @property
    def index_path(self) -> Path:
        return self.data_dir / INDEX_FILENAME


@dataclass(frozen=True)
class Config:
    path: Path
    config_version: str
    controller: ControllerSettings
    prompts_dir: Path
    processes: Mapping[str, Process]
    routing: tuple[RoutingRule, ...]
    default_process: str
    jurisdictions: Mapping[str, str]  # country or subdivision ("US-CA") -> process name
    roles: Mapping[str, frozenset[str]]
    agents: Mapping[str, str]  # extension -> role
    users: Mapping[str, str]  # user name -> role
    helpdesk: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    ropa: Mapping[str, Any] = field(default_factory=dict)       # controller identity for the Art. 30 record
    retention: Mapping[str, Any] = field(default_factory=dict)  # tag and purpose retention rules (controller.admin)

    def process_for_country(self, code: str) -> str | None:
        """The process for a country or subdivision; "US-CA" falls back to "US"."""
        return self.jurisdictions.get(code) or self.jurisdictions.get(code.split("-")[0])


def load_config(path: str | Path) -> Config:
    """Read, validate and freeze the configuration; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: expected a readable configuration file, got {exc.strerror}") from exc
    tree = Tree(str(path))
    root = yaml_root(tree, raw)
    top = None if tree.problems else Section.of(tree, root, "")
    config = _config(top, path, raw) if top is not None else None
    if tree.problems:
        raise ConfigError(tree.problems)
    in_file_order = [message for _, message in sorted(tree.warnings, key=lambda warning: warning[0])]
    config = replace(config, warnings=tuple(in_file_order + _global_warnings(config)))
    return config


def _config(top: Section, path: Path, raw: bytes) -> Config:
    base_dir = path.resolve().parent
    explicit_version = top.take("config_version", version, default=None)
    prompts_dir = base_dir / (top.take("prompts_dir", text, default=".") or ".")
    processes = top.mapping_of("processes", name, lambda s, key: _process(s, key, prompts_dir)) or {}
    if processes and all(p is not None and p.records for p in processes.values()):
        top.problem("processes", "at least one process with pack none (do-not-record customers go there)",
                    "only recording processes")
    process_ref = choice(tuple(processes), "the name of a process")
    roles = top.take_mapping("roles", name, permissions, default={}) or {}
    role_ref = choice(tuple(roles), "the name of a role")
    config = Config(
        path=path,
        config_version=explicit_version or "sha256:" + hashlib.sha256(raw).hexdigest(),
        controller=top.section("controller", lambda s: _controller(s, base_dir), default={}),
        prompts_dir=prompts_dir,
        processes=MappingProxyType(processes),
        routing=tuple(top.list_of("routing", lambda s, i: _routing_rule(s, i, process_ref), default=[]) or ()),
        default_process=top.take("default_process", process_ref),
        jurisdictions=MappingProxyType(top.take_mapping("jurisdictions", country, process_ref, default={}) or {}),
        roles=MappingProxyType(roles),
        agents=MappingProxyType(top.mapping_of("agents", phone_number, lambda s, k: _principal(s, role_ref),
                                               default={}) or {}),
        users=MappingProxyType(top.mapping_of("users", name, lambda s, k: _principal(s, role_ref),
                                              default={}) or {}),
        helpdesk=top.take("helpdesk", free_mapping, default=MappingProxyType({})),
        ropa=top.take("ropa", free_mapping, default=MappingProxyType({})),
        retention=top.take("retention", free_mapping, default=MappingProxyType({})),
    )
    top.finish()
    return config


def _controller(sec: Section, base_dir: Path) -> ControllerSettings:
    host, port = sec.take("listen", listen_address, default=("127.0.0.1", 8084)) or (None, None)
    esl = sec.section("esl", _esl, default={})
    dirs = {key: base_dir / (sec.take(key, text, default=key.removesuffix("_dir")) or ".")
            for key in ("data_dir", "spool_dir", "recordings_dir")}
    sec.finish()
    return ControllerSettings(listen_host=host, listen_port=port, esl=esl, **dirs)


def _esl(sec: Section) -> EslSettings:
    esl = EslSettings(
        host=sec.take("host", text, default=EslSettings.host),
        port=sec.take("port", integer(1, 65535), default=EslSettings.port),
        password=sec.take("password", text, default=EslSettings.password),
    )
    if esl.password == "ClueCon":
        sec.warn("password", "the FreeSWITCH default ESL password; change it on both sides")
    sec.finish()
    return esl


def _process(sec: Section, process_name: str, prompts_dir: Path) -> Process:
    pack = sec.take("pack", choice(PACKS))
    strict = sec.take("strict", boolean, default=False)
    legal = Section.REQUIRED if pack != "none" else None  # legal facts have no default
    process = Process(
        name=process_name, pack=pack, strict=strict,
        country=sec.take("country", country, default=legal),
        prompts=MappingProxyType(sec.section(
            "prompts", lambda s: _prompts(s, pack, strict, prompts_dir), default={}) or {}),
        consent=sec.section("consent", _consent, default={}),
        purpose=sec.take("purpose", choice(UK_PURPOSES) if pack == "uk" else text, default=legal),
        lawful_basis=sec.take("lawful_basis", choice(LAWFUL_BASES), default=legal),
        retention_days=sec.take("retention_days", integer(0, 36500), default=legal),
        gap=sec.take("gap", choice(GAP_MODES), default="silence"),
        hold_back_s=sec.take("hold_back_s", number(0, 3600), default=20.0),
        record_ivr=sec.take("record_ivr", boolean, default=False),
        record_queue=sec.take("record_queue", boolean, default=False),
        record_hold=sec.take("record_hold", boolean, default=False),
        agent=sec.take("agent", text),
        withdrawal=sec.section("withdrawal", _withdrawal, default={}),
        agent_codes=sec.take("agent_codes", free_mapping, default=MappingProxyType({})),
    )
    _process_warnings(sec, process)
    sec.finish()
    return process


def _process_warnings(sec: Section, process: Process) -> None:
    if process.pack == "de-optout" and (process.country or "").split("-")[0] == "DE":
        sec.warn("pack", "de-optout for a German process: German authorities do not accept "
                         "'press 1 to object' plus carrying on as consent; use pack de")
    if process.strict and process.pack != "us-all-party":
        sec.warn("strict", f"has no effect on pack {process.pack} (only us-all-party)")
    if not process.records:
        return
    if process.pack == "de" and process.lawful_basis not in (None, "consent"):
        sec.warn("lawful_basis", f"pack de asks for consent but the lawful basis is {process.lawful_basis}")
    if process.retention_days == 0:
        sec.warn("retention_days", "0 days: recordings are deleted by the first retention purge")
    if process.hold_back_s == 0:
        sec.warn("hold_back_s", "0 s: 'cut the last seconds' cannot remove audio already stored")
    if process.withdrawal is not None and process.withdrawal.code is None:
        sec.warn("withdrawal.code", "null: callers cannot withdraw consent during the call")


def _prompts(sec: Section, pack: str | None, strict: bool, prompts_dir: Path) -> dict:
    if pack not in PROMPT_IDS:
        return {}  # the pack is already reported; which prompts it needs is unknown
    required, optional = PROMPT_IDS[pack]
    if pack == "us-all-party" and strict:
        required = required | {"consent"}
    for prompt_id in sorted(required):
        sec.require(prompt_id, f"a prompt file (pack {pack} needs it)")
    prompts = {}
    for prompt_id in sec.keys():
        if prompt_id in required | optional:
            relative = sec.take(prompt_id, text)
            if relative is not None:
                prompts[prompt_id] = _prompt_file(sec, prompt_id, prompts_dir / relative)
    sec.finish(known=required | optional)
    return prompts


def _prompt_file(sec: Section, prompt_id: str, path: Path) -> Prompt | None:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        sec.problem(prompt_id, "an existing, readable prompt file", f"{path} ({exc.strerror})")
        return None
    return Prompt(id=prompt_id, path=path.resolve(), sha256=digest)


def _consent(sec: Section) -> ConsentSettings:
    consent = ConsentSettings(
        agree_key=sec.take("agree_key", dtmf_key, default=ConsentSettings.agree_key),
        decline_key=sec.take("decline_key", dtmf_key, default=ConsentSettings.decline_key),
        optout_key=sec.take("optout_key", dtmf_key, default=ConsentSettings.optout_key),
        # FreeSWITCH's play_and_get_digits raises any timeout under 1 s to 1 s
        timeout_s=sec.take("timeout_s", number(1, 60), default=ConsentSettings.timeout_s),
        attempts=sec.take("attempts", integer(1, 5), default=ConsentSettings.attempts),
    )
    if consent.agree_key is not None and consent.agree_key == consent.decline_key:
        sec.problem("decline_key", "a key different from agree_key", repr(consent.decline_key))
    sec.finish()
    return consent


def _withdrawal(sec: Section) -> WithdrawalSettings:
    withdrawal = WithdrawalSettings(
        code=sec.take("code", dtmf_code, default=WithdrawalSettings.code),
        on_withdraw=sec.take("on_withdraw", choice(ON_WITHDRAW), default=WithdrawalSettings.on_withdraw),
    )
    sec.finish()
    return withdrawal


def _routing_rule(sec: Section, index: int, process_ref) -> RoutingRule | None:
    given = [m for m in ROUTING_MATCHERS if m in sec.keys()]
    if len(given) != 1:
        sec.problem("", f"exactly one of the keys {', '.join(ROUTING_MATCHERS)}", ", ".join(given) or "none")
        return None
    matcher = given[0]
    if matcher == "customer":
        if sec.take("customer", boolean) is False:
            sec.problem("customer", "true (leave the rule out to ignore customer records)", "false")
        sec.finish()
        return RoutingRule(index, matcher, None, None, None, sec.line)
    value = sec.take(matcher, phone_number if matcher == "dialed" else e164_prefix)
    if ("process" in sec.keys()) == ("country" in sec.keys()):
        sec.problem("", "exactly one of the keys process, country",
                    "both" if "process" in sec.keys() else "neither")
    target = sec.take("process", process_ref, default=None)
    jurisdiction = sec.take("country", country, default=None)
    sec.finish()
    return RoutingRule(index, matcher, value, target, jurisdiction, sec.line)


def _principal(sec: Section, role_ref) -> str:
    role = sec.take("role", role_ref)
    sec.finish()
    return role


def _global_warnings(config: Config) -> list[str]:
    """Cross-section doubts; only run on a structurally valid config."""
    where = str(config.path)
    warnings = []
    used = {config.default_process, *config.jurisdictions.values(), *(r.process for r in config.routing)}
    for process in config.processes.values():
        if process.name not in used and not any(r.matcher == "customer" for r in config.routing):
            warnings.append(f"{where}: processes.{process.name}: not used by any routing rule, "
                            f"jurisdiction or default_process")
        extension = process.agent.removeprefix("user/").split("@")[0]
        if process.agent.startswith("user/") and extension not in config.agents:
            warnings.append(f"{where}: processes.{process.name}.agent: {process.agent} is not in agents, "
                            f"so its feature codes have no role")
    seen = {}
    for rule in config.routing:
        key = (rule.matcher, rule.value)
        if rule.matcher != "customer" and key in seen:
            warnings.append(f"{where}: routing[{rule.index}]: repeats routing[{seen[key]}] "
                            f"({rule.matcher}={rule.value}); the earlier rule wins ties")
        seen.setdefault(key, rule.index)
    return warnings


@check("a list of permissions")
def permissions(node: Node) -> frozenset[str]:
    if not isinstance(node.value, list) or not all(isinstance(item.value, str) for item in node.value):
        raise Bad(permissions.expected)
    unknown = sorted({item.value for item in node.value} - set(PERMISSIONS))
    if unknown:
        raise Bad(f"permissions from {', '.join(PERMISSIONS)}", f" (unknown: {', '.join(unknown)})")
    return frozenset(item.value for item in node.value)
