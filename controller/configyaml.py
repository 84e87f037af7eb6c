"""The configuration's YAML as checked nodes: every value keeps its line, and every check says what it expected.

`yaml_root` composes a file into `Node`s (so that line numbers survive, and an unquoted `NO`, which YAML reads
as false, can be shown as the user wrote it); `Section` walks a mapping key by key and collects problems
instead of stopping at the first; the value checks (`text`, `choice(...)`, `country`, `dtmf_code`, ...) turn a
node into a value or raise `Bad` with what was expected. controller.config builds the dataclasses with them.
"""

from __future__ import annotations

import difflib
import re
from types import MappingProxyType
from typing import Any, Mapping

import yaml


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
