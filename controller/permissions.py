"""Who may do what: roles from the configuration grant permissions to agents and staff (pure).

Agents are identified by their extension (`config.agents`), staff by a configured user name
(`config.users`); both name a role in `config.roles`. The controller's own actions (the caller's
withdrawal code, retention jobs) run as a `system` actor, which is allowed everything: no input
from a phone or a command line may ever be turned into a system actor.

`authorise` never raises for unknown names: an unknown actor, role or permission is refused
with a reason, so the caller can audit the refusal and play the refusal tone.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.config import PERMISSIONS, Config

__all__ = ["ACTOR_KINDS", "PAUSE", "Actor", "Decision", "authorise", "required_permission"]

ACTOR_KINDS = ("agent", "user", "system")
# Asking for PAUSE (or either pause permission) resolves to pause_own or pause_others by whose call it is.
PAUSE = "pause"
_PAUSES = (PAUSE, "pause_own", "pause_others")


@dataclass(frozen=True)
class Actor:
    """Someone acting on a recording: agent "1001" (an extension), user "anna", or system "withdrawal"."""

    kind: str
    name: str

    def __post_init__(self):
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"actor kind: expected one of {', '.join(ACTOR_KINDS)}, got {self.kind!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"actor name: expected a non-empty string, got {self.name!r}")

    @classmethod
    def agent(cls, extension: str) -> Actor:
        return cls("agent", extension)

    @classmethod
    def user(cls, name: str) -> Actor:
        return cls("user", name)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls("system", name)

    @classmethod
    def parse(cls, text: str) -> Actor:
        """The inverse of str(): "agent:1001" -> Actor("agent", "1001")."""
        kind, sep, name = text.partition(":")
        if not sep:
            raise ValueError(f"actor: expected kind:name like agent:1001 or user:anna, got {text!r}")
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Decision:
    """The answer to one request: `permission` is what was checked (pause resolved to own or others)."""

    allowed: bool
    reason: str
    actor: Actor
    permission: str
    role: str | None = None


def required_permission(actor: Actor, action: str, call_owner_extension: str | None = None) -> str:
    """The permission an action needs; pausing is pause_own only for an agent's own call.

    A call whose owner is unknown counts as someone else's call (the stricter permission).
    """
    if action not in _PAUSES:
        return action
    own = actor.kind == "agent" and call_owner_extension is not None and call_owner_extension == actor.name
    return "pause_own" if own else "pause_others"


def authorise(config: Config, actor: Actor, permission: str, *,
              call_owner_extension: str | None = None) -> Decision:
    """Whether `actor` may use `permission` ("pause" resolves by `call_owner_extension`)."""
    needed = required_permission(actor, permission, call_owner_extension)
    if needed not in PERMISSIONS:
        return Decision(False, f"unknown permission {permission!r}", actor, needed)
    if actor.kind == "system":
        return Decision(True, f"{actor} acts for the controller", actor, needed)
    principals = config.agents if actor.kind == "agent" else config.users
    role = principals.get(actor.name)
    what = "extension" if actor.kind == "agent" else "user name"
    if role is None:
        return Decision(False, f"{actor} is not a configured {what}", actor, needed)
    granted = config.roles.get(role)
    if granted is None:
        return Decision(False, f"{actor} has role {role!r}, which is not configured", actor, needed, role)
    if needed not in granted:
        return Decision(False, f"{actor} (role {role}) may not {needed}", actor, needed, role)
    return Decision(True, f"{actor} (role {role}) may {needed}", actor, needed, role)
