"""The corpus of good and bad configuration files, each carrying its expected messages.

A bad file starts with `# expect: <text>` lines: loading it must fail with a ConfigError whose
message contains every such text, and with that one problem only. A good file starts with `# warning: <text>` lines (or none):
it must load, with exactly that many warnings, each containing its text.
"""

from pathlib import Path

import pytest

from controller.config import ConfigError, load_config

FIXTURES = Path(__file__).parent / "fixtures" / "config"


def _header(path: Path, tag: str) -> list[str]:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("# "):
            break
        if line.startswith(f"# {tag}: "):
            lines.append(line.removeprefix(f"# {tag}: "))
    return lines


def _ids(paths):
    return [p.stem for p in paths]


BAD = sorted((FIXTURES / "bad").glob("*.yaml"))
GOOD = sorted((FIXTURES / "good").glob("*.yaml"))


def test_the_corpus_is_there():
    assert len(BAD) >= 30 and len(GOOD) >= 5
    assert all(_header(p, "expect") for p in BAD), "every bad file names its expected message"


@pytest.mark.parametrize("path", BAD, ids=_ids(BAD))
def test_bad_config_is_rejected_with_its_message(path):
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    for expected in _header(path, "expect"):
        assert expected in message, f"{expected!r} not in:\n{message}"
    assert all(problem.startswith(f"{path}:") for problem in caught.value.problems)
    # each file has one defect, and one defect must not cascade into follow-up noise
    assert len(caught.value.problems) == 1, message


@pytest.mark.parametrize("path", GOOD, ids=_ids(GOOD))
def test_good_config_loads_with_its_warnings(path):
    config = load_config(path)
    expected = _header(path, "warning")
    assert len(config.warnings) == len(expected), "\n".join(config.warnings)
    for text in expected:
        assert any(text in warning for warning in config.warnings), f"{text!r} not in {config.warnings}"
