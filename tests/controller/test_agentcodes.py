"""Agent codes, the pure part: settings and their errors, bindings, requests, permissions, read-back rules."""

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

import controller
from controller.agentcodes import (ACTIONS, DEFAULT_TAGS, AgentCodeError, AgentCodeSettings, RecorderState,
                                   bind_commands, bindings, bridged_agent_uuid, confirm, decide,
                                   dial_string_extension, parse_agent_codes, parse_all, parse_request,
                                   precondition, record_stop_command, sound_command)
from controller.config import load_config
from controller.errors import ConfigError
from controller.permissions import Actor

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
PATH = "processes.de.agent_codes"


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


def problems(raw, **kwargs):
    with pytest.raises(ConfigError) as caught:
        parse_agent_codes(raw, PATH, **kwargs)
    return caught.value.problems


# --- settings --------------------------------------------------------------------------------

def test_defaults_are_the_issues_map():
    settings = parse_agent_codes({}, PATH)
    assert settings.codes == {"tag": "*1", "flag": "*2", "pause": "*3", "resume": "*4", "cut": "*5", "stop": "*6",
                              "delete": "*7", "withdraw": "*8"}
    assert (settings.tags, settings.cut_seconds, settings.read_back_s, settings.fail_closed) == (
        DEFAULT_TAGS, 30.0, 2.0, "stop")
    assert settings.success_tone != settings.refusal_tone and settings.pause_notice is None
    assert parse_agent_codes(None, PATH) == settings == AgentCodeSettings()


def test_overrides_and_switching_codes_off():
    settings = parse_agent_codes({"codes": {"stop": None, "pause": "#3"}, "tags": ["vip", "fraud"],
                                  "cut_seconds": 20, "read_back_s": 0.5, "fail_closed": "hangup",
                                  "tones": {"success": "tone_stream://%(80,20,2000)"}}, PATH)
    assert "stop" not in settings.codes and settings.codes["pause"] == "#3"
    assert settings.tags == ("vip", "fraud") and settings.cut_seconds == 20.0 and settings.fail_closed == "hangup"
    assert settings.success_tone == "tone_stream://%(80,20,2000)"
    assert settings.refusal_tone == AgentCodeSettings().refusal_tone


def test_every_problem_is_reported_by_its_key_path():
    found = problems({"codes": {"pause": "*x", "dance": "*9", "cut": 5}, "tags": ["Complaint"], "cut_seconds": 0,
                      "read_back_s": "2", "fail_closed": "explode", "enabled": "yes", "tones": {"success": "a b"},
                      "notices": {"pause": 3, "hold": None}, "colour": "red"})
    expected_paths = ["colour", "enabled", "codes.pause", "codes.dance", "codes.cut", "tags[0]", "cut_seconds",
                      "read_back_s", "fail_closed", "tones.success", "notices.pause", "notices.hold"]
    assert [p.split(":")[0] for p in found] == [f"{PATH}.{key}" for key in expected_paths]
    assert f"{PATH}.fail_closed: expected one of mask, stop, hangup, got 'explode'" in found
    assert f"{PATH}.cut_seconds: expected a number from 1 to 3600, got 0" in found
    assert "unknown key 'colour'" in found[0]


@pytest.mark.parametrize("raw,path", [
    ({"codes": {"flag": "*1"}}, "codes.flag"),                       # *1 starts every tag code (*11, *12, ...)
    ({"codes": {"resume": "*33"}}, "codes.resume"),                  # *3 (pause) would always win
    ({"codes": {"cut": "*4"}}, "codes.cut"),                         # the same code twice
    ({"tags": [f"t{n}" for n in range(10)]}, "tags"),                # one digit: at most 9 tags
    ({"tags": ["a", "a"]}, "tags"),
    ("not a mapping", None),
])
def test_codes_that_cannot_all_be_reached_are_refused(raw, path):
    found = problems(raw)
    assert len(found) == 1 and found[0].startswith(f"{PATH}.{path}:" if path else f"{PATH}:"), found


def test_notice_files_resolve_under_the_prompts_dir_and_must_exist(tmp_path):
    (tmp_path / "paused.wav").write_bytes(b"RIFF")
    settings = parse_agent_codes({"notices": {"pause": "paused.wav", "resume": "tone_stream://%(300,0,900)"}},
                                 PATH, prompts_dir=tmp_path)
    assert settings.pause_notice == str((tmp_path / "paused.wav").resolve())
    assert settings.resume_notice == "tone_stream://%(300,0,900)"
    assert problems({"notices": {"resume": "missing.wav"}}, prompts_dir=tmp_path) == [
        f"{PATH}.notices.resume: expected an existing prompt file, got 'missing.wav'"]


def test_parse_all_checks_every_process_and_names_the_file(config):
    assert set(parse_all(config)) == set(config.processes)
    de = dataclasses.replace(config.processes["de"], agent_codes={"fail_closed": "maybe"})
    uk = dataclasses.replace(config.processes["uk"], agent_codes={"cut_seconds": -1})
    broken = dataclasses.replace(config, processes=dict(config.processes, de=de, uk=uk))
    with pytest.raises(ConfigError) as caught:
        parse_all(broken)
    assert [p.split(": ")[1] for p in caught.value.problems] == ["processes.de.agent_codes.fail_closed",
                                                                 "processes.uk.agent_codes.cut_seconds"]
    assert all(p.startswith(f"{EXAMPLE}: ") for p in caught.value.problems)


# --- bindings and requests -------------------------------------------------------------------------

def test_default_bindings_one_per_tag_number():
    found = [(b.digits, b.request) for b in bindings(AgentCodeSettings())]
    assert found == [("*11", "tag-1"), ("*12", "tag-2"), ("*13", "tag-3"), ("*2", "flag"), ("*3", "pause"),
                     ("*4", "resume"), ("*5", "cut"), ("*6", "stop"), ("*7", "delete"), ("*8", "withdraw")]
    assert bindings(AgentCodeSettings())[2].app_arg == "consentline,*13,exec:event,agent_code=tag-3"
    assert bindings(parse_agent_codes({"enabled": False}, PATH)) == []


def test_requests_name_actions_and_tags_never_digits():
    settings = AgentCodeSettings()
    assert parse_request("pause", settings).action == "pause"
    assert parse_request("tag-3", settings) == parse_request("tag-3", settings)
    assert parse_request("tag-3", settings).tag == "complaint"
    without_stop = parse_agent_codes({"codes": {"stop": None}}, PATH)
    for value, chosen in [("tag-4", settings), ("tag", settings), ("pause-1", settings), ("dance", settings),
                          ("", settings), (None, settings), ("stop", without_stop),
                          ("pause", parse_agent_codes({"enabled": False}, PATH))]:
        with pytest.raises(AgentCodeError):
            parse_request(value, chosen)


codes_strategy = st.dictionaries(st.sampled_from(ACTIONS), st.one_of(st.none(), st.text("0123456789*#", min_size=1,
                                                                                        max_size=3)))
tags_strategy = st.lists(st.text("abcxyz", min_size=1, max_size=6), max_size=9, unique=True)


@hsettings(max_examples=200, deadline=None)
@given(codes_strategy, tags_strategy)
def test_accepted_settings_bind_only_reachable_codes_that_name_their_request(codes, tag_names):
    try:
        settings = parse_agent_codes({"codes": codes, "tags": tag_names}, PATH)
    except ConfigError:
        return
    found = bindings(settings)
    digits = [b.digits for b in found]
    assert all(not a.startswith(b) for a in digits for b in digits if a != b)
    assert len(set(digits)) == len(digits)
    for binding in found:
        request = parse_request(binding.request, settings)
        assert binding.digits.startswith(settings.codes[request.action])
        assert request.tag is None or request.tag == settings.tags[int(binding.digits[-1]) - 1]


# --- who may do what ---------------------------------------------------------------------------------

@pytest.mark.parametrize("extension,action,owner,allowed", [
    ("1001", "tag", "1001", True), ("1001", "flag", "1001", True), ("1001", "pause", "1001", True),
    ("1001", "pause", "1002", False), ("1001", "resume", "1001", True), ("1001", "cut", "1001", True),
    ("1001", "stop", "1001", False), ("1001", "delete", "1001", False), ("1001", "withdraw", "1001", True),
    ("1002", "stop", "1001", True), ("1002", "delete", "1001", True), ("1002", "pause", "1001", True),
    ("1009", "withdraw", "1009", False), ("1009", "tag", "1009", False),
])
def test_the_example_matrix_for_codes(config, extension, action, owner, allowed):
    decision = decide(config, Actor.agent(extension), action, owner)
    assert decision.allowed is allowed, decision.reason


def test_pause_on_someone_elses_call_needs_pause_others(config):
    assert decide(config, Actor.agent("1001"), "pause", "1002").permission == "pause_others"
    assert decide(config, Actor.agent("1001"), "pause", None).permission == "pause_others"
    assert decide(config, Actor.user("compliance-officer"), "withdraw", None).allowed is False


# --- recorder state ----------------------------------------------------------------------------------

LIVE = RecorderState("recording", "recording", False, 80000, False)


def test_recorder_actions_need_a_running_recording_tags_need_audio():
    stopped = dataclasses.replace(LIVE, call_state="stopped", media_status="finished")
    deleted = dataclasses.replace(LIVE, call_state="withdrawn", media_status="deleted")
    assert all(precondition(action, LIVE) is None for action in ACTIONS)
    assert precondition("pause", stopped) == "the recording is stopped, not running"
    assert precondition("tag", stopped) is None and precondition("flag", deleted) == "the recording is deleted"


def test_read_back_rules():
    paused = dataclasses.replace(LIVE, paused=True)
    switch_gone = dataclasses.replace(paused, switch_stopped=True)
    assert confirm("pause", paused) is None and confirm("pause", LIVE) and confirm("pause", switch_gone)
    assert confirm("resume", LIVE) is None and confirm("resume", paused)
    assert confirm("cut", LIVE, (1000, 8000, 8000)) is None
    assert confirm("cut", LIVE, (0, 500, 8000)) is None          # a recording shorter than the cut
    assert confirm("cut", LIVE, (1000, 500, 8000)) and confirm("cut", LIVE, None)
    stopped = RecorderState("stopped", "finished", False, 80000, True)
    assert confirm("stop", stopped) is None and confirm("stop", dataclasses.replace(stopped, switch_stopped=False))
    assert confirm("delete", RecorderState("withdrawn", "deleted", False, 0, True)) is None
    assert confirm("delete", RecorderState("withdrawn", "deleted", False, 0, False))
    assert confirm("withdraw", RecorderState("withdrawn", "finished", False, 80000, True)) is None
    assert confirm("tag", LIVE) == "no read-back rule for 'tag'"


# --- what goes to FreeSWITCH ---------------------------------------------------------------------------

@pytest.mark.parametrize("dial,extension", [
    ("user/1001", "1001"), ("user/1001@example.org", "1001"), ("{call_timeout=30}user/1002", "1002"),
    ("[leg_timeout=5]user/1003|user/1004", "1003"), ("sofia/internal/1005@127.0.0.1:5062", "1005"),
    ("loopback/9000", None), ("error/USER_BUSY", None), ("user/", None),
])
def test_dial_string_extension(dial, extension):
    assert dial_string_extension(dial) == extension


def test_commands():
    commands = bind_commands("agent-1", AgentCodeSettings(), "x")
    assert len(commands) == 11 and all(c.startswith("sendmsg agent-1\ncall-command: execute\n") for c in commands)
    assert "execute-app-name: bind_digit_action\nexecute-app-arg: consentline,*11,exec:event,agent_code=tag-1" \
        in commands[0]
    assert "execute-app-name: digit_action_set_realm\nexecute-app-arg: consentline" in commands[-1]
    assert "event-lock" not in commands[0]
    with pytest.raises(ValueError):
        bind_commands("agent-1\nEvent-Name: forged", AgentCodeSettings(), "x")
    assert record_stop_command("c-1", "/spool/c-1.raw") == "uuid_record c-1 stop /spool/c-1.raw"
    assert sound_command("a-1", "tone_stream://%(1,2,3)", "aleg") == "uuid_broadcast a-1 tone_stream://%(1,2,3) aleg"
    assert sound_command("c-1", "/p/n.wav", "displace") == "uuid_displace c-1 start /p/n.wav 0 mux"


def test_bridged_agent_uuid():
    assert bridged_agent_uuid({"Event-Name": "CHANNEL_BRIDGE", "Bridge-B-Unique-ID": "b"}) == "b"
    assert bridged_agent_uuid({"Event-Name": "CHANNEL_BRIDGE", "variable_bridge_uuid": "b2"}) == "b2"
    assert bridged_agent_uuid({"Event-Name": "CHANNEL_UNBRIDGE", "Bridge-B-Unique-ID": "b"}) is None
    assert bridged_agent_uuid({"Event-Name": "CHANNEL_BRIDGE"}) is None
