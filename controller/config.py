"""Load the YAML configuration into frozen dataclasses, validating every key.

Every problem is reported as `<file>:<line>: <dotted.path>: expected <what>, got <what>`, and all
problems in a file are reported together in one `ConfigError`. Legal but doubtful settings become
warnings (`Config.warnings`). The YAML is composed into nodes first so that line numbers survive
and an unquoted `NO` (which YAML reads as false) can be shown as the user wrote it.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

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


# --- YAML nodes and value checks -------------------------------------------------------------

ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
VG VI VN VU WF WS YE YT ZA ZM ZW""".split())
# ISO 3166-2:US: the states, DC and the outlying areas. Other countries' subdivisions are only
# checked for shape, since their lists change and no rule here depends on them.
US_SUBDIVISIONS = frozenset("""
AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND
OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR UM VI""".split())
COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}


class Node:
    """A YAML value with its line and the text the user wrote (for scalars)."""

    __slots__ = ("value", "line", "text", "key_nodes")

    def __init__(self, value, line: int, text: str | None = None, key_nodes: dict | None = None):
        self.value, self.line, self.text, self.key_nodes = value, line, text, key_nodes or {}


class Tree:
    """Collects problems and warnings for one file."""

    def __init__(self, file: str):
        self.file, self.problems, self.warnings = file, [], []

    def problem(self, line: int, path: str | None, expected: str, got: str) -> None:
        where = "" if path is None else f" {path or '<top>'}:"
        self.problems.append(f"{self.file}:{line}:{where} expected {expected}, got {got}")

    def warn(self, line: int, path: str, message: str) -> None:
        self.warnings.append((line, f"{self.file}:{line}: {path}: {message}"))


def yaml_root(tree: Tree, raw: bytes) -> Node | None:
    """Compose the YAML into Nodes; a syntax error becomes a problem with its line."""
    loader = yaml.SafeLoader(raw)
    try:
        root = loader.get_single_node()
        return None if root is None else _node(tree, loader, root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        hint = " (quote values that start with '*', like \"*9\")" if "alias" in str(exc.problem) else ""
        tree.problem(mark.line + 1 if mark else 0, None, "valid YAML", f"{exc.problem}{hint}")
    except yaml.YAMLError as exc:
        tree.problem(0, None, "valid YAML", str(exc))
    finally:
        loader.dispose()
    return None


def _node(tree: Tree, loader: yaml.SafeLoader, node: yaml.Node, path: str = "") -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, _ in node.value:  # repeats among the keys as written; merged keys may be overridden
            if key_node.tag != "tag:yaml.org,2002:merge" and key_node.value in seen:
                tree.problem(key_node.start_mark.line + 1, _join(path, key_node.value),
                             "each key once in a mapping", "a repeated key")
            seen.add(key_node.value)
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges, explicit keys last
        values, keys = {}, {}
        for key_node, value_node in node.value:
            key = _node(tree, loader, key_node, path)
            label = key.text if key.text is not None else str(key.value)
            value = _node(tree, loader, value_node, _join(path, label))
            if isinstance(value.value, (dict, list)):
                value.line = key.line  # a block starts below its key; point at the key
            values[label], keys[label] = value, key
        return Node(values, line, key_nodes=keys)
    if isinstance(node, yaml.SequenceNode):
        return Node([_node(tree, loader, item, f"{path}[{i}]") for i, item in enumerate(node.value)], line)
    return Node(loader.construct_object(node, deep=True), line, text=node.value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(node: Node) -> str:
    value = node.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return repr(value)
    shown = {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value
    return f"{node.text} (YAML reads it as {type(value).__name__} {shown})"


class Bad(Exception):
    """Raised by a value check; the Section turns it into a problem line."""

    def __init__(self, expected: str, hint: str = ""):
        super().__init__(expected)
        self.expected, self.hint = expected, hint


def check(expected: str):
    """Mark a value check with what it expects, for "missing key" messages."""
    def mark(fn):
        fn.expected = expected
        return fn
    return mark


class Section:
    """One YAML mapping being read: takes keys through value checks, then reports unknown keys."""

    REQUIRED = object()

    def __init__(self, tree: Tree, node: Node, path: str):
        self.tree, self.node, self.path, self.line, self.used = tree, node, path, node.line, set()

    @classmethod
    def of(cls, tree: Tree, node: Node | None, path: str) -> Section | None:
        if node is None or not isinstance(node.value, dict):
            got = "an empty file" if node is None else _describe(node)
            tree.problem(1 if node is None else node.line, path, "a mapping", got)
            return None
        return cls(tree, node, path)

    def keys(self) -> list[str]:
        return list(self.node.value)

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path and key else (key or self.path)

    def problem(self, key: str, expected: str, got: str) -> None:
        node = self.node.value.get(key)
        self.tree.problem(node.line if node else self.line, self.child(key), expected, got)

    def warn(self, key: str, message: str) -> None:
        node = self.node.value.get(key.split(".")[0])
        self.tree.warn(node.line if node else self.line, self.child(key), message)

    def require(self, key: str, expected: str) -> None:
        if key not in self.node.value:
            self.problem(key, expected, "nothing (the key is missing)")

    def _get(self, key: str, expected: str, default) -> Node | None:
        self.used.add(key)
        node = self.node.value.get(key)
        if node is None and default is Section.REQUIRED:
            self.problem(key, expected, "nothing (the key is missing)")
        return node

    def take(self, key: str, convert, default=REQUIRED):
        """The converted value of `key`, its default when absent, or None after a problem."""
        node = self._get(key, convert.expected, default)
        if node is None:
            return None if default is Section.REQUIRED else default
        return self._convert(node, self.child(key), convert)

    def _convert(self, node: Node, path: str, convert):
        try:
            return convert(node)
        except Bad as bad:
            self.tree.problem(node.line, path, bad.expected, _describe(node) + bad.hint)
            return None

    def section(self, key: str, parse, default=REQUIRED):
        """Parse the mapping under `key` with parse(Section); an absent key parses `default`."""
        node = self._get(key, "a mapping", default)
        if node is None:
            if default is Section.REQUIRED:
                return None
            node = Node(default, self.line)
        sub = Section.of(self.tree, node, self.child(key))
        return parse(sub) if sub is not None else None

    def mapping_of(self, key: str, key_check, parse, default=REQUIRED) -> dict | None:
        """A mapping of checked names to parse(Section, name) results."""
        def each(sub: Section, name: str, node: Node):
            entry = Section.of(self.tree, node, sub.child(name))
            return parse(entry, name) if entry is not None else None
        return self._items(key, key_check, each, default)

    def take_mapping(self, key: str, key_check, value_check, default=REQUIRED) -> dict | None:
        """A mapping of checked keys to checked scalar values."""
        return self._items(key, key_check, lambda sub, name, node: sub._convert(node, sub.child(name), value_check),
                           default)

    def _items(self, key, key_check, each, default):
        node = self._get(key, "a mapping", default)
        if node is None:
            return None if default is Section.REQUIRED else dict(default)
        sub = Section.of(self.tree, node, self.child(key))
        if sub is None:
            return None
        result = {}
        for name, value_node in node.value.items():
            checked = sub._convert(node.key_nodes[name], sub.child(name), key_check)
            if checked is not None:
                result[checked] = each(sub, name, value_node)
        return result

    def list_of(self, key: str, parse, default=REQUIRED) -> list | None:
        """A list of mappings, each parsed as parse(Section, index)."""
        node = self._get(key, "a list", default)
        if node is None:
            return None if default is Section.REQUIRED else list(default)
        if not isinstance(node.value, list):
            self.tree.problem(node.line, self.child(key), "a list", _describe(node))
            return None
        items = (Section.of(self.tree, item, f"{self.child(key)}[{i}]") for i, item in enumerate(node.value))
        return [parse(item, i) if item is not None else None for i, item in enumerate(items)]

    def finish(self, known=None) -> None:
        """Report every key not taken (or not in `known`), with a suggestion for typos."""
        known = self.used if known is None else set(known)
        for key in self.node.value:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problem(key, f"one of the keys {', '.join(sorted(known)) or '(none)'}",
                             f"unknown key {key!r}{hint}")


@check("a non-empty string")
def text(node: Node) -> str:
    if not isinstance(node.value, str) or not node.value.strip():
        raise Bad(text.expected)
    return node.value


@check("a config version (a string or a number)")
def version(node: Node) -> str:
    if isinstance(node.value, bool) or not isinstance(node.value, (str, int, float)) or not str(node.value):
        raise Bad(version.expected)
    return node.text if node.text is not None else str(node.value)


@check("a name made of letters, digits, '_' and '-'")
def name(node: Node) -> str:
    if not isinstance(node.value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", node.value):
        raise Bad(name.expected, "; quote it" if node.text and not isinstance(node.value, str) else "")
    return node.value


@check("true or false")
def boolean(node: Node) -> bool:
    if not isinstance(node.value, bool):
        raise Bad(boolean.expected)
    return node.value


def integer(low: int, high: int):
    @check(f"a whole number from {low} to {high}")
    def whole(node: Node) -> int:
        if isinstance(node.value, bool) or not isinstance(node.value, int) or not low <= node.value <= high:
            raise Bad(whole.expected)
        return node.value
    return whole


def number(low: float, high: float):
    @check(f"a number from {low} to {high}")
    def real(node: Node) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise Bad(real.expected)
        return float(value)
    return real


def choice(options: tuple[str, ...], what: str = "one of"):
    @check(f"{what} {', '.join(options) or '(none defined)'}")
    def pick(node: Node) -> str:
        if not isinstance(node.value, str):
            raise Bad(pick.expected, "; quote it" if node.text else "")
        if node.value not in options:
            close = difflib.get_close_matches(node.value, options, n=1)
            raise Bad(pick.expected, f" (did you mean {close[0]!r}?)" if close else "")
        return node.value
    return pick


@check('a quoted ISO 3166 country code like "DE", or a subdivision like "US-CA"')
def country(node: Node) -> str:
    if not isinstance(node.value, str):
        raise Bad(country.expected, f'; quote the country code: "{node.text}"' if node.text else "")
    problem = country_code_problem(node.value)
    if problem:
        raise Bad(country.expected, f" ({problem})")
    return node.value


def country_code_problem(code: str) -> str | None:
    """None for a valid ISO 3166-1 alpha-2 code or subdivision ("US-CA"), else what is wrong."""
    country_part, dash, subdivision = code.partition("-")
    if country_part not in ISO_COUNTRIES:
        hint = COUNTRY_HINTS.get(country_part)
        return f"the ISO code is {hint!r}" if hint else "unknown country code"
    if dash and (country_part == "US" and subdivision not in US_SUBDIVISIONS
                 or not re.fullmatch(r"[A-Z0-9]{1,3}", subdivision)):
        return "unknown subdivision"
    return None


@check("a DTMF key: one of 0-9, *, #")
def dtmf_key(node: Node) -> str:
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return str(value)
    if not isinstance(value, str) or not re.fullmatch(r"[0-9*#]", value):
        raise Bad(dtmf_key.expected)
    return value


@check('a quoted DTMF code of 1 to 8 keys from 0-9, *, # (like "*9"), or null to disable')
def dtmf_code(node: Node) -> str | None:
    if node.value is None:
        return None
    if not isinstance(node.value, str) or not re.fullmatch(r"[0-9*#]{1,8}", node.value):
        raise Bad(dtmf_code.expected)
    return node.value


@check('a quoted phone number, E.164 like "+4930100100" or an extension like "1001"')
def phone_number(node: Node) -> str:
    if not isinstance(node.value, str):
        raise Bad(phone_number.expected, "; quote phone numbers, YAML drops the '+' and leading zeros")
    if not re.fullmatch(r"\+?[0-9]{2,15}", node.value) or node.value.startswith("+0"):
        raise Bad(phone_number.expected)
    return node.value


@check('a quoted E.164 prefix like "+49"')
def e164_prefix(node: Node) -> str:
    if not isinstance(node.value, str):
        raise Bad(e164_prefix.expected, "; quote phone numbers, YAML drops the '+' and leading zeros")
    if not re.fullmatch(r"\+[1-9][0-9]{0,14}", node.value):
        raise Bad(e164_prefix.expected)
    return node.value


@check('"host:port", like "127.0.0.1:8084"')
def listen_address(node: Node) -> tuple[str, int]:
    host, _, port = str(node.value).rpartition(":")
    if not isinstance(node.value, str) or not host or not port.isdigit() or int(port) > 65535:
        raise Bad(listen_address.expected)
    return host, int(port)


@check("a list of permissions")
def permissions(node: Node) -> frozenset[str]:
    if not isinstance(node.value, list) or not all(isinstance(item.value, str) for item in node.value):
        raise Bad(permissions.expected)
    unknown = sorted({item.value for item in node.value} - set(PERMISSIONS))
    if unknown:
        raise Bad(f"permissions from {', '.join(PERMISSIONS)}", f" (unknown: {', '.join(unknown)})")
    return frozenset(item.value for item in node.value)


@check("a mapping")
def free_mapping(node: Node) -> Mapping[str, Any]:
    """A section kept as read (for features configured elsewhere), made read-only."""
    if not isinstance(node.value, dict):
        raise Bad(free_mapping.expected)
    return _frozen(node)


def _frozen(node: Node):
    if isinstance(node.value, dict):
        return MappingProxyType({key: _frozen(child) for key, child in node.value.items()})
    if isinstance(node.value, list):
        return tuple(_frozen(child) for child in node.value)
    return node.value
