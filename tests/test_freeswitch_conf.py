"""Static checks of the FreeSWITCH 1.10 configuration in freeswitch/conf.

FreeSWITCH itself is not available to the tests, so they do what its loader does first:
resolve the pre-processor lines the way switch_xml.c does (line by line: lines holding
<include> or </include> are dropped, double-dollar variables are expanded as each line
is read, `set` defines a global, `include` pulls in files or globs relative to the
including file), parse the result, and then check the tree: sections, modules and their
configurations, the Event Socket address the controller expects, the SIP profiles, the
directory, and what the dialplan does with a trunk call (a small evaluator of the XML
dialplan's condition/action rules).
"""

from __future__ import annotations

import glob
import ipaddress
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "freeswitch" / "conf"
CONTROLLER_EXAMPLE = ROOT / "controller" / "examples" / "consentline.example.yaml"

# Globals FreeSWITCH defines itself before it reads freeswitch.xml (switch_core.c).
CORE_VARS = {
    "hostname": "fs1.example.net",
    "local_ip_v4": "192.0.2.10",
    "local_mask_v4": "255.255.255.0",
    "local_ip_v6": "::1",
    "switch_serial": "0000",
    "core_uuid": "00000000-0000-0000-0000-000000000000",
    "base_dir": "/usr/local/freeswitch",
    "conf_dir": "/usr/local/freeswitch/conf",
    "log_dir": "/usr/local/freeswitch/log",
    "run_dir": "/usr/local/freeswitch/run",
    "db_dir": "/usr/local/freeswitch/db",
    "mod_dir": "/usr/local/freeswitch/mod",
    "htdocs_dir": "/usr/local/freeswitch/htdocs",
    "script_dir": "/usr/local/freeswitch/scripts",
    "temp_dir": "/tmp",
    "grammar_dir": "/usr/local/freeswitch/grammar",
    "fonts_dir": "/usr/local/freeswitch/fonts",
    "images_dir": "/usr/local/freeswitch/images",
    "certs_dir": "/usr/local/freeswitch/certs",
    "storage_dir": "/usr/local/freeswitch/storage",
    "cache_dir": "/usr/local/freeswitch/cache",
    "data_dir": "/usr/local/freeswitch",
    "localstate_dir": "/usr/local/freeswitch",
    "recordings_dir": "/usr/local/freeswitch/recordings",
    "sounds_dir": "/usr/local/freeswitch/sounds",
}

INCLUDE_MARKERS = ("<include>", "< include >", "</include>", "< /include >")
GLOBAL_VAR = re.compile(r"\$\$\{([^}]*)\}")
PRE_PROCESS = re.compile(r"<X-PRE-PROCESS\b([^>]*?)/>", re.IGNORECASE)
ATTRIBUTE = re.compile(r'([\w-]+)\s*=\s*"([^"]*)"')

# Modules and the configuration each reads; None: the module has no configuration file.
MODULE_CONFIGS = {
    "mod_console": "console.conf",
    "mod_logfile": "logfile.conf",
    "mod_event_socket": "event_socket.conf",
    "mod_sofia": "sofia.conf",
    "mod_loopback": None,
    "mod_commands": None,
    "mod_dptools": None,
    "mod_dialplan_xml": None,
    "mod_spandsp": "spandsp.conf",
    "mod_sndfile": None,
    "mod_native_file": None,
    "mod_tone_stream": None,
}
CORE_CONFIGS = {"switch.conf", "modules.conf", "acl.conf"}

RECORDING_APPS = {"record", "record_session", "record_fsv", "uuid_record", "bind_meta_app"}
RECORDING_WORDS = re.compile(r"(?i)\b(record_session|uuid_record|record_fsv)\b")


class PreprocessError(Exception):
    pass


class Preprocessor:
    """FreeSWITCH's X-PRE-PROCESS pass: `include` (with globs) and `set`, $${var} expansion."""

    def __init__(self, variables: dict[str, str] | None = None):
        self.vars: dict[str, str] = dict(CORE_VARS if variables is None else variables)
        self.files: list[Path] = []
        self.unknown: list[str] = []

    def run(self, path: Path) -> str:
        out: list[str] = []
        self._file(Path(path), out, 0)
        return "".join(out)

    def _expand(self, match: re.Match, where: str) -> str:
        name = match.group(1)
        if name not in self.vars:
            self.unknown.append(f"{where}: $${{{name}}}")
            return ""
        return self.vars[name]

    def _file(self, path: Path, out: list[str], depth: int) -> None:
        if depth > 20:
            raise PreprocessError(f"include nesting too deep at {path}")
        self.files.append(path.resolve())
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(keepends=True), 1):
            if any(marker in line for marker in INCLUDE_MARKERS):
                continue
            where = f"{path.relative_to(CONF) if path.is_relative_to(CONF) else path}:{lineno}"
            line = GLOBAL_VAR.sub(lambda m: self._expand(m, where), line)
            tag = PRE_PROCESS.search(line)
            if not tag:
                out.append(line)
                continue
            attrs = dict(ATTRIBUTE.findall(tag.group(1)))
            cmd, data = attrs.get("cmd", "").lower(), attrs.get("data", "")
            if cmd == "set":
                name, sep, value = data.partition("=")
                if not sep or not name.strip():
                    raise PreprocessError(f"{where}: set needs name=value, got {data!r}")
                self.vars[name.strip()] = value
            elif cmd == "include":
                pattern = data if Path(data).is_absolute() else str(path.parent / data)
                matches = sorted(glob.glob(pattern))
                if not matches and not glob.has_magic(pattern):
                    raise PreprocessError(f"{where}: include of missing file {data!r}")
                for match in matches:
                    self._file(Path(match), out, depth + 1)
            else:
                raise PreprocessError(f"{where}: unsupported pre-processor command {cmd!r}")


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pre() -> Preprocessor:
    processor = Preprocessor()
    processor.text = processor.run(CONF / "freeswitch.xml")
    return processor


@pytest.fixture(scope="module")
def doc(pre) -> ET.Element:
    return ET.fromstring(pre.text)


@pytest.fixture(scope="module")
def gvars(pre) -> dict[str, str]:
    return pre.vars


@pytest.fixture(scope="module")
def controller_example() -> dict:
    if not CONTROLLER_EXAMPLE.exists():
        pytest.skip("no controller example configuration to compare with")
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(CONTROLLER_EXAMPLE.read_text(encoding="utf-8"))["controller"]


# --- helpers --------------------------------------------------------------------------------

def section(doc: ET.Element, name: str) -> ET.Element:
    found = doc.findall(f"./section[@name='{name}']")
    assert len(found) == 1, f"expected one section {name!r}, found {len(found)}"
    return found[0]


def configuration(doc: ET.Element, name: str) -> ET.Element:
    found = section(doc, "configuration").findall(f"./configuration[@name='{name}']")
    assert len(found) == 1, f"expected one configuration {name!r}, found {len(found)}"
    return found[0]


def params(elem: ET.Element) -> dict[str, str]:
    """name -> value of the <param>s directly under elem/settings (or elem itself)."""
    settings = elem.find("settings")
    holder = settings if settings is not None else elem
    result = {}
    for param in holder.findall("param"):
        name = param.get("name")
        assert name not in result, f"param {name!r} set twice"
        result[name] = param.get("value")
    return result


def loaded_modules(doc: ET.Element) -> list[str]:
    return [load.get("module") for load in configuration(doc, "modules.conf").iter("load")]


def acl_list(doc: ET.Element, name: str) -> ET.Element:
    found = configuration(doc, "acl.conf").findall(f"./network-lists/list[@name='{name}']")
    assert len(found) == 1, f"ACL list {name!r} is not defined once in acl.conf"
    return found[0]


def acl_allows(acl: ET.Element, address: str) -> bool:
    """The first matching node decides, as in switch_network_list_validate_ip; else the default."""
    ip = ipaddress.ip_address(address)
    for node in acl.findall("node"):
        cidrs = [c.strip() for c in (node.get("cidr") or "").split(",") if c.strip()]
        if any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs):
            return node.get("type") == "allow"
    return acl.get("default") == "allow"


def sofia_profile(doc: ET.Element, name: str) -> dict[str, str]:
    found = configuration(doc, "sofia.conf").findall(f"./profiles/profile[@name='{name}']")
    assert len(found) == 1, f"sofia profile {name!r} not defined once"
    return params(found[0])


def hunt(doc: ET.Element, context: str, destination: str, gvars: dict[str, str],
         channel_vars: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The applications mod_dialplan_xml would queue for a call to `destination`.

    As in parse_exten: conditions in order; a match queues its actions, a miss its
    anti-actions; break (default on-false) stops the extension; the extension counts as
    matched when its last evaluated condition matched, and hunting stops at a matched
    extension unless it has continue="true". `${var}` fields read channel variables, then
    globals, as switch_channel_get_variable does.
    """
    contexts = section(doc, "dialplan").findall(f"./context[@name='{context}']")
    assert len(contexts) == 1, f"dialplan context {context!r} not defined once"
    profile = {"destination_number": destination, "caller_id_number": "+4930555000",
               "network_addr": "127.0.0.1", "context": context}
    lookup = {**gvars, **(channel_vars or {})}
    queued: list[tuple[str, str]] = []
    for extension in contexts[0].findall("extension"):
        proceed = False
        for cond in extension.findall("condition"):
            field, expression = cond.get("field"), cond.get("expression")
            assert field is not None and expression is not None, "conditions here test a field"
            if field.startswith("$"):
                value = re.sub(r"\$\{([^}]*)\}", lambda m: lookup.get(m.group(1), ""), field)
            else:
                value = profile.get(field, "")
            match = re.search(expression, value)
            proceed = match is not None
            how = cond.get("break", "on-false")
            if match:
                for action in cond.findall("action"):
                    data = re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))) or "", action.get("data", ""))
                    queued.append((action.get("application"), data))
                if how in ("on-true", "always"):
                    break
            else:
                for action in cond.findall("anti-action"):
                    queued.append((action.get("application"), action.get("data", "")))
                if how in ("on-false", "always"):
                    break
        if proceed and extension.get("continue", "false") != "true":
            break
    return queued


def set_value(actions: list[tuple[str, str]], variable: str) -> str | None:
    """The value the last `set variable=...` in actions leaves."""
    value = None
    for app, data in actions:
        if app == "set" and data.partition("=")[0] == variable:
            value = data.partition("=")[2]
    return value


def comments(text: str) -> list[str]:
    return re.findall(r"<!--(.*?)-->", text, re.DOTALL)


# --- the pre-processor itself ---------------------------------------------------------------

def test_preprocessor_resolves_like_freeswitch(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "root.xml").write_text(
        '<document>\n'
        '  <X-PRE-PROCESS cmd="set" data="who=world"/>\n'
        '  <X-PRE-PROCESS cmd="set" data="greeting=hello $${who}=x"/>\n'
        '  <X-PRE-PROCESS cmd="include" data="parts/*.xml"/>\n'
        '  <X-PRE-PROCESS cmd="include" data="parts/*.none"/>\n'
        '</document>\n')
    (tmp_path / "parts" / "b.xml").write_text('<include>\n  <b v="$${greeting}"/>\n</include>\n')
    (tmp_path / "parts" / "a.xml").write_text('<include>\n  <a v="$${who}"/>\n</include>\n')
    processor = Preprocessor({})
    tree = ET.fromstring(processor.run(tmp_path / "root.xml"))
    assert [(child.tag, child.get("v")) for child in tree] == [("a", "world"), ("b", "hello world=x")]
    assert processor.unknown == []

    (tmp_path / "bad.xml").write_text('<x v="$${nope}"/>\n')
    processor = Preprocessor({})
    processor.run(tmp_path / "bad.xml")
    assert processor.unknown and "nope" in processor.unknown[0]

    (tmp_path / "missing.xml").write_text('<x>\n<X-PRE-PROCESS cmd="include" data="gone.xml"/>\n</x>\n')
    with pytest.raises(PreprocessError):
        Preprocessor({}).run(tmp_path / "missing.xml")


# --- files and the expanded tree ------------------------------------------------------------

ALL_XML = sorted(CONF.rglob("*.xml"))


def test_conf_tree_exists():
    assert (CONF / "freeswitch.xml").is_file()
    assert (CONF / "README.md").is_file()
    assert len(ALL_XML) >= 14


@pytest.mark.parametrize("path", ALL_XML, ids=lambda p: str(p.relative_to(CONF)))
def test_every_file_is_well_formed_xml(path):
    ET.parse(path)


@pytest.mark.parametrize("path", ALL_XML, ids=lambda p: str(p.relative_to(CONF)))
def test_every_file_survives_line_based_preprocessing(path):
    """FreeSWITCH drops whole lines holding <include>/</include> and acts on pre-processor
    tags even inside comments, so those must sit alone on their lines, outside comments."""
    text = path.read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        if any(marker in line for marker in INCLUDE_MARKERS):
            assert line.strip() in ("<include>", "</include>"), f"line {lineno} shares a line with an include marker"
        if "X-PRE-PROCESS" in line:
            assert re.fullmatch(r"\s*<X-PRE-PROCESS\b[^>]*/>\s*", line), f"line {lineno}: pre-processor tag not alone"
    for comment in comments(text):
        assert "X-PRE-PROCESS" not in comment and "$${" not in comment
        assert not any(marker in comment for marker in INCLUDE_MARKERS)
    if path != CONF / "freeswitch.xml":
        assert "<?xml" not in text, "only the root document may carry an XML declaration"


def test_expanded_tree_has_the_sections(doc, pre):
    assert doc.tag == "document" and doc.get("type") == "freeswitch/xml"
    for name in ("configuration", "dialplan", "directory"):
        section(doc, name)
    assert pre.unknown == [], f"undefined variables: {pre.unknown}"
    assert "$${" not in pre.text


def test_every_file_is_loaded(pre):
    assert sorted(set(pre.files)) == sorted(p.resolve() for p in ALL_XML), "a file is never included (or twice)"
    assert len(pre.files) == len(set(pre.files))


def test_configuration_names_are_unique(doc):
    names = [c.get("name") for c in section(doc, "configuration").findall("configuration")]
    assert len(names) == len(set(names)), names


# --- vars -----------------------------------------------------------------------------------

def test_vars(gvars):
    assert gvars["consentline_socket"] == "127.0.0.1:8084"
    assert gvars["domain"] == CORE_VARS["local_ip_v4"] and gvars["domain_name"] == gvars["domain"]
    assert gvars["global_codec_prefs"] == "PCMA,PCMU"
    assert gvars["outbound_codec_prefs"] == "PCMA,PCMU"
    assert gvars["consentline_fallback"] in ("agents", "announce")
    assert gvars["esl_password"] and gvars["agent_password"]
    ipaddress.ip_network(gvars["trunk_cidr"], strict=False)
    ipaddress.ip_network(gvars["esl_allowed_cidr"], strict=False)


def test_socket_address_is_the_controllers(gvars, controller_example):
    assert gvars["consentline_socket"] == controller_example["listen"]


# --- modules and configurations -------------------------------------------------------------

def test_modules_are_the_needed_ones(doc):
    modules = loaded_modules(doc)
    assert len(modules) == len(set(modules)), "a module is loaded twice"
    assert set(modules) == set(MODULE_CONFIGS)
    assert modules[:2] == ["mod_console", "mod_logfile"], "loggers first, so module loading is logged"


def test_each_module_has_its_configuration(doc):
    names = {c.get("name") for c in section(doc, "configuration").findall("configuration")}
    needed = {MODULE_CONFIGS[m] for m in loaded_modules(doc)} - {None}
    assert needed | CORE_CONFIGS <= names, f"missing: {sorted((needed | CORE_CONFIGS) - names)}"
    assert names <= needed | CORE_CONFIGS, f"configuration for nothing loaded: {sorted(names - needed - CORE_CONFIGS)}"


def test_switch_conf(doc):
    settings = params(configuration(doc, "switch.conf"))
    start, end = int(settings["rtp-start-port"]), int(settings["rtp-end-port"])
    assert 1024 < start < end <= 65535
    assert int(settings["max-sessions"]) > 0
    assert int(settings["sessions-per-second"]) > 0
    assert settings["event-heartbeat-interval"] == "20"


def test_console_and_logfile(doc):
    assert params(configuration(doc, "console.conf"))["loglevel"] == "info"
    profiles = configuration(doc, "logfile.conf").findall("./profiles/profile")
    assert [p.get("name") for p in profiles] == ["default"]


# --- event socket ---------------------------------------------------------------------------

def test_event_socket_listens_where_the_controller_expects(doc, controller_example):
    settings = params(configuration(doc, "event_socket.conf"))
    esl = controller_example["esl"]
    assert settings["listen-ip"] == esl["host"] == "127.0.0.1"
    assert int(settings["listen-port"]) == int(esl["port"]) == 8021
    assert settings["password"] == esl["password"]


def test_event_socket_acl(doc):
    settings = params(configuration(doc, "event_socket.conf"))
    acl = acl_list(doc, settings["apply-inbound-acl"])
    assert acl.get("default") == "deny"
    assert acl_allows(acl, settings["listen-ip"])
    assert not acl_allows(acl, "203.0.113.7")


# --- sofia ----------------------------------------------------------------------------------

def test_sofia_profiles(doc, gvars):
    profiles = configuration(doc, "sofia.conf").findall("./profiles/profile")
    assert sorted(p.get("name") for p in profiles) == ["external", "internal"]

    external = sofia_profile(doc, "external")
    assert external["sip-port"] == "5080"
    assert external["context"] == "public" and external["dialplan"] == "XML"
    assert external["inbound-late-negotiation"] == "false"
    assert external["dtmf-type"] == "rfc2833"
    assert external["auth-calls"] == "false"
    trunks = acl_list(doc, external["apply-inbound-acl"])
    assert trunks.get("default") == "deny" and not acl_allows(trunks, "203.0.113.7")

    internal = sofia_profile(doc, "internal")
    assert internal["sip-port"] == "5060"
    assert internal["context"] == "default" and internal["dialplan"] == "XML"
    assert internal["auth-calls"] == "true"
    assert internal["accept-blind-reg"] == "false"
    assert internal["force-register-domain"] == gvars["domain"]

    for settings in (external, internal):
        assert settings["inbound-codec-prefs"] == "PCMA,PCMU"
        assert settings["outbound-codec-prefs"] == "PCMA,PCMU"
    contexts = {c.get("name") for c in section(doc, "dialplan").findall("context")}
    assert {external["context"], internal["context"]} <= contexts


def test_sofia_cannot_record_on_a_phones_request(doc):
    for name in ("external", "internal"):
        settings = sofia_profile(doc, name)
        assert "record-template" not in settings and "record-path" not in settings


# --- directory ------------------------------------------------------------------------------

def test_directory_users(doc, gvars):
    domains = section(doc, "directory").findall("domain")
    assert [d.get("name") for d in domains] == [gvars["domain"]]
    domain = domains[0]
    assert "sofia_contact(" in params(domain.find("params"))["dial-string"]
    users = {u.get("id"): u for u in domain.iter("user")}
    assert {"1001", "1002"} <= set(users)
    for uid in ("1001", "1002"):
        user_params = params(users[uid].find("params"))
        assert user_params["password"] == gvars["agent_password"]
        variables = {v.get("name"): v.get("value") for v in users[uid].iter("variable")}
        assert variables["user_context"] == "default"


# --- dialplan -------------------------------------------------------------------------------

E164 = ["+4930100100", "4930100100", "+442070100100", "+14155550100", "+4930100900", "1001"]
NOT_NUMBERS = ["", "abc", "+49 30 100", "+", "1001x", "sip:+4930100100@carrier"]


@pytest.mark.parametrize("destination", E164)
def test_public_hands_every_number_to_the_controller(doc, gvars, destination):
    actions = hunt(doc, "public", destination, gvars)
    apps = [app for app, _ in actions]
    assert apps.count("socket") == 1
    at = apps.index("socket")
    assert actions[at][1] == "127.0.0.1:8084 async full"
    assert actions[at][1] == f"{gvars['consentline_socket']} async full"
    before = actions[:at]
    assert {app for app, _ in before} == {"set"}, "nothing but variables before the controller has the call"
    assert set_value(before, "RECORD_STEREO") == "true"
    assert set_value(before, "hangup_after_bridge") == "false"
    assert set_value(before, "continue_on_fail") == "true"
    assert set_value(before, "force_transfer_context") == "default", "a blind transfer must not come back here"


@pytest.mark.parametrize("destination", NOT_NUMBERS)
def test_public_rejects_what_is_not_a_number(doc, gvars, destination):
    actions = hunt(doc, "public", destination, gvars)
    assert actions == [("hangup", "UNALLOCATED_NUMBER")]


@pytest.mark.parametrize("mode", ["agents", "announce"])
def test_public_fallback_is_safe(doc, gvars, mode):
    actions = hunt(doc, "public", "+4930100100", {**gvars, "consentline_fallback": mode})
    apps = [app for app, _ in actions]
    after = actions[apps.index("socket") + 1:]
    after_apps = [app for app, _ in after]
    assert ("stop_record_session", "all") in after
    stop = after.index(("stop_record_session", "all"))
    assert not set(after_apps[:stop]) - {"set", "log"}, "recordings stop before anything else happens"
    assert after[-1] == ("hangup", "NORMAL_TEMPORARY_FAILURE")
    assert "playback" in after_apps
    if mode == "agents":
        assert after_apps.count("bridge") == 1
        bridge = after_apps.index("bridge")
        assert set_value(after[:bridge], "hangup_after_bridge") == "true", "a finished agent call must end the call"
        targets = after[bridge][1].split(",")
        assert targets == [f"user/1001@{gvars['domain']}", f"user/1002@{gvars['domain']}"]
        assert after_apps.index("playback") > bridge, "announcement only when no agent answered"
    else:
        assert "bridge" not in after_apps


@pytest.mark.parametrize("agent", ["1001", "1002"])
def test_default_reaches_the_agents(doc, gvars, agent):
    actions = hunt(doc, "default", agent, gvars)
    assert ("bridge", f"user/{agent}@{gvars['domain']}") in actions
    assert set_value(actions, "hangup_after_bridge") == "true"
    users = {u.get("id") for u in section(doc, "directory").iter("user")}
    assert agent in users


def test_default_rejects_unknown_extensions(doc, gvars):
    assert hunt(doc, "default", "1003", gvars) == [("hangup", "UNALLOCATED_NUMBER")]


def test_nothing_in_the_configuration_records(doc):
    """Only the controller starts recordings: no recording application in any dialplan, and
    no recording command hidden in a variable (execute_on_answer, api_on_answer ...)."""
    for context in section(doc, "dialplan").iter("context"):
        for action in list(context.iter("action")) + list(context.iter("anti-action")):
            app = action.get("application")
            assert app not in RECORDING_APPS, f"{context.get('name')}: {app}"
            if app == "set":
                name = action.get("data", "").partition("=")[0].lower()
                assert not name.startswith(("execute_on_", "api_on_", "api_after_")), name
    for elem in doc.iter():
        for value in elem.attrib.values():
            assert not RECORDING_WORDS.search(value.replace("stop_record_session", "")), value
    for variable in section(doc, "directory").iter("variable"):
        assert not variable.get("name", "").lower().startswith("record"), variable.get("name")
