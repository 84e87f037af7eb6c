"""Permissions: the example config's matrix (every permission x role), pause own vs others, refusals."""

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

import controller
from controller.config import PERMISSIONS, load_config
from controller.permissions import Actor, authorise, required_permission

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"

# What issue 5 says the example grants (not read from the config, so a config change is caught).
AGENT = {"tag", "flag", "pause_own", "resume", "cut"}
SUPERVISOR = AGENT | {"stop", "delete", "pause_others", "listen", "export"}
COMPLIANCE = {"listen", "export", "delete", "legal_hold_apply", "legal_hold_release", "purge", "erase"}
MATRIX = [(Actor.agent("1001"), AGENT), (Actor.agent("1002"), SUPERVISOR),
          (Actor.user("compliance-officer"), COMPLIANCE)]


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


def _owner_for(actor, permission):
    """A call owner that makes `permission` the one checked: the actor's own call for pause_own."""
    return actor.name if permission == "pause_own" else "1999"


@pytest.mark.parametrize("actor,granted", MATRIX, ids=lambda v: str(v) if isinstance(v, Actor) else "")
@pytest.mark.parametrize("permission", PERMISSIONS)
def test_example_matrix(config, actor, granted, permission):
    decision = authorise(config, actor, permission, call_owner_extension=_owner_for(actor, permission))
    expected = permission in granted and not (permission == "pause_own" and actor.kind == "user")
    assert decision.allowed is expected, decision.reason
    assert decision.actor == actor
    assert decision.permission == permission or actor.kind == "user"
    assert (" may " + permission if expected else " may not ") in decision.reason


def test_matrix_covers_every_permission_in_the_config_schema():
    assert set(PERMISSIONS) >= SUPERVISOR | COMPLIANCE
    assert len(PERMISSIONS) == 14


def test_pause_resolves_by_whose_call_it_is(config):
    agent = Actor.agent("1001")
    own = authorise(config, agent, "pause", call_owner_extension="1001")
    assert (own.allowed, own.permission) == (True, "pause_own")
    other = authorise(config, agent, "pause", call_owner_extension="1002")
    assert (other.allowed, other.permission) == (False, "pause_others")
    assert "may not pause_others" in other.reason
    # asking for pause_own on someone else's call does not slip past pause_others
    assert authorise(config, agent, "pause_own", call_owner_extension="1002").allowed is False
    supervisor = authorise(config, Actor.agent("1002"), "pause", call_owner_extension="1001")
    assert (supervisor.allowed, supervisor.permission) == (True, "pause_others")


def test_pause_with_unknown_owner_needs_pause_others(config):
    assert required_permission(Actor.agent("1001"), "pause") == "pause_others"
    assert authorise(config, Actor.agent("1001"), "pause").allowed is False
    assert authorise(config, Actor.agent("1002"), "pause").allowed is True


def test_staff_never_pause_their_own_call():
    assert required_permission(Actor.user("1001"), "pause", "1001") == "pause_others"


def test_unknown_actors_are_refused_with_a_reason(config):
    stranger = authorise(config, Actor.agent("1003"), "tag")
    assert not stranger.allowed and stranger.reason == "agent:1003 is not a configured extension"
    assert stranger.role is None
    user = authorise(config, Actor.user("mallory"), "export")
    assert not user.allowed and "not a configured user name" in user.reason
    # an extension is not a user name, nor the other way round
    assert not authorise(config, Actor.user("1002"), "stop").allowed
    assert not authorise(config, Actor.agent("compliance-officer"), "erase").allowed


def test_unknown_permissions_are_refused_with_a_reason(config):
    for permission in ("rewind", "", "TAG", "pause own"):
        decision = authorise(config, Actor.agent("1002"), permission)
        assert not decision.allowed
        assert decision.reason == f"unknown permission {permission!r}"
    assert not authorise(config, Actor.system("retention"), "rewind").allowed


def test_system_actor_may_do_anything_known(config):
    for permission in PERMISSIONS:
        assert authorise(config, Actor.system("withdrawal"), permission).allowed


def test_a_role_missing_from_roles_is_refused(config):
    broken = replace(config, agents=MappingProxyType({"1005": "ghost"}))
    decision = authorise(broken, Actor.agent("1005"), "tag")
    assert not decision.allowed and "role 'ghost', which is not configured" in decision.reason


def test_actor_validation_and_text_round_trip():
    with pytest.raises(ValueError, match="actor kind"):
        Actor("admin", "root")
    with pytest.raises(ValueError, match="actor name"):
        Actor("agent", " ")
    assert str(Actor.agent("1001")) == "agent:1001"
    assert Actor.parse("user:anna") == Actor.user("anna")
    with pytest.raises(ValueError):
        Actor.parse("anna")
