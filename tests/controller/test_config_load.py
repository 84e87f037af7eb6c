"""Loading the configuration: the shipped example, derived values, immutability and error reporting."""

import dataclasses
import hashlib
import importlib.util
import shutil
from pathlib import Path

import pytest
import soundfile
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import controller
from controller.config import PROMPT_IDS, ConfigError, load_config

EXAMPLES = Path(controller.__file__).parent / "examples"
EXAMPLE = EXAMPLES / "consentline.example.yaml"
FIXTURE_PROMPTS = Path(__file__).parent / "fixtures" / "config" / "prompts"
MAKE_PROMPTS = Path(controller.__file__).parent.parent / "scripts" / "make_prompts.py"


@pytest.fixture(scope="module")
def example():
    return load_config(EXAMPLE)


def test_example_routes_the_demo_numbers_to_their_processes(example):
    by_number = {rule.value: rule.process for rule in example.routing if rule.matcher == "dialed"}
    assert by_number == {"+4930100100": "de", "+4930100200": "de-optout", "+442070100100": "uk",
                         "+14155550100": "us-all-party", "+4930100900": "none"}
    callers = {rule.value: rule.process for rule in example.routing if rule.matcher == "caller_prefix"}
    assert callers == {"+49": "de", "+44": "uk"}
    assert {name: p.pack for name, p in example.processes.items()} == {
        "de": "de", "de-optout": "de-optout", "uk": "uk", "us-all-party": "us-all-party", "none": "none"}
    assert example.processes["us-all-party"].strict and example.processes["us-all-party"].requires_opt_in


def test_example_consent_keys_withdrawal_and_agents(example):
    de = example.processes["de"]
    assert (de.consent.agree_key, de.consent.decline_key, de.consent.timeout_s) == ("1", "2", 5.0)
    assert de.withdrawal.code == "*9"
    assert dict(example.agents) == {"1001": "agent", "1002": "supervisor"}
    assert "cut" in example.roles["agent"] and "delete" not in example.roles["agent"]


def test_example_warns_about_opt_out_in_germany_only(example):
    assert any("processes.de-optout.pack" in w and "use pack de" in w for w in example.warnings)
    assert not any("processes.de.pack" in w for w in example.warnings)


def test_example_prompts_exist_are_hashed_and_are_8khz_mono_16bit(example):
    for process in example.processes.values():
        required, optional = PROMPT_IDS[process.pack]
        assert required <= set(process.prompts) <= required | optional | {"consent"}
        for prompt in process.prompts.values():
            assert prompt.path.is_absolute() and prompt.path.is_file()
            assert prompt.sha256 == hashlib.sha256(prompt.path.read_bytes()).hexdigest()
            info = soundfile.info(str(prompt.path))
            assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
            assert 1.5 <= info.duration <= 10


def test_committed_prompts_are_what_the_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_prompts", MAKE_PROMPTS)
    make_prompts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_prompts)
    assert make_prompts.main(["make_prompts.py", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert written == sorted(p.name for p in (EXAMPLES / "prompts").glob("*.wav"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (EXAMPLES / "prompts" / name).read_bytes(), name


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"prompts_dir: {FIXTURE_PROMPTS}\n" + text)
    return path


MINIMAL = """\
processes:
  de: {pack: de, country: "DE", prompts: {consent: consent.wav}, purpose: quality, lawful_basis: consent,
       retention_days: 30, agent: "user/1001"}
  never: {pack: none, agent: "user/1001"}
default_process: never
"""


def test_config_version_is_the_file_hash_unless_given(tmp_path):
    path = _write(tmp_path, MINIMAL)
    first = load_config(path).config_version
    assert first == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(path.read_text() + "# edited\n")
    assert load_config(path).config_version != first
    assert load_config(_write(tmp_path, 'config_version: "2024-05-01"\n' + MINIMAL)).config_version == "2024-05-01"


def test_config_is_frozen(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL + "helpdesk: {url: 'https://example.org/hook', retries: [1, 2]}\n"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.default_process = "de"
    with pytest.raises(TypeError):
        config.processes["x"] = config.processes["de"]
    with pytest.raises(TypeError):
        config.helpdesk["url"] = "changed"
    assert config.helpdesk["retries"] == (1, 2)


def test_relative_paths_follow_the_config_file(tmp_path):
    shutil.copytree(FIXTURE_PROMPTS, tmp_path / "site" / "voice")
    (tmp_path / "site" / "c.yaml").write_text(
        "prompts_dir: voice\ncontroller: {data_dir: db, spool_dir: /dev/shm/spool}\n" + MINIMAL)
    config = load_config(tmp_path / "site" / "c.yaml")
    assert config.controller.index_path == tmp_path / "site" / "db" / "consentline.db"
    assert config.controller.spool_dir == Path("/dev/shm/spool")
    assert config.processes["de"].prompts["consent"].path == tmp_path / "site" / "voice" / "consent.wav"


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    text = MINIMAL.replace('country: "DE"', "country: NO").replace("retention_days: 30", "retention_days: -1")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, text + "routing: [{dialed: '+49', process: fr}]\n"))
    paths = [problem.split(": ")[1] for problem in caught.value.problems]
    assert paths == ["processes.de.country", "processes.de.retention_days", "routing[0].process"]


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="expected a readable configuration file"):
        load_config(tmp_path / "absent.yaml")


def test_country_lookup_falls_back_from_subdivision_to_country(tmp_path):
    config = load_config(_write(tmp_path, MINIMAL + 'jurisdictions: {"US": never, "DE-BY": de}\n'))
    assert config.process_for_country("US-CA") == "never"
    assert config.process_for_country("DE-BY") == "de"
    assert config.process_for_country("DE") is None


def _paths(tree, prefix=()):
    """Every (path, value) in a parsed YAML tree."""
    yield prefix, tree
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from _paths(value, prefix + (key,))


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 100000), st.floats(allow_nan=False, width=32),
                    st.text(max_size=12), st.sampled_from(["NO", "de", "+49", "*9", "user/1001", "1"]))
VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_of_the_example_loads_or_fails_with_config_error(tmp_path, data):
    tree = yaml.safe_load(EXAMPLE.read_text())
    tree["prompts_dir"] = str(EXAMPLES / "prompts")
    path, _ = data.draw(st.sampled_from([p for p in _paths(tree) if p[0]]))
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(VALUES)
    target = tmp_path / "mutated.yaml"
    target.write_text(yaml.safe_dump(tree))
    try:
        config = load_config(target)
    except ConfigError as error:
        assert error.problems and all(p.startswith(f"{target}:") and " expected " in p for p in error.problems)
    else:
        assert config.default_process in config.processes
        assert all(rule.process is None or rule.process in config.processes for rule in config.routing)
