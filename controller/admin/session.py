"""Who runs an admin command, with which configuration, index and media store.

`--config FILE` gives the permission matrix, the media store (`controller.recordings_dir`) and the
index (`controller.data_dir`, or `--data DIR`); `--as NAME` a configured user. Every action is
authorised against the matrix; a refusal is audited and ends the command (exit 1) with nothing changed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import click
import sqlite_utils

from controller import audit
from controller.config import INDEX_FILENAME, Config, load_config
from controller.errors import ConsentlineError
from controller.index import Index
from controller.permissions import Actor, Decision, authorise
from media import MediaStore

__all__ = ["AdminSession", "Refused", "open_session", "session_options"]


class Refused(ConsentlineError):
    """The permission matrix refused the action (the refusal is already audited)."""


def session_options(fn=None, *, user_required: bool = True):
    """--config, --data and --as (both required unless `user_required` is False)."""
    if fn is None:
        return lambda f: session_options(f, user_required=user_required)
    fn = click.option("--as", "user", required=user_required, metavar="NAME",
                      help="Act as this configured user (checked against the permission matrix, audited).")(fn)
    fn = click.option("--data", "data_dir", type=click.Path(file_okay=False),
                      help=f"Directory holding {INDEX_FILENAME} (default: the config's controller.data_dir).")(fn)
    return click.option("--config", "config_file", type=click.Path(dir_okay=False), required=user_required,
                        help="The configuration: users and roles, data_dir, recordings_dir.")(fn)


@dataclass
class AdminSession:
    config: Config
    index: Index
    actor: Actor
    _store: MediaStore | None = field(default=None, repr=False)

    @property
    def store(self) -> MediaStore:
        if self._store is None:
            self._store = MediaStore(self.config.controller.recordings_dir)
        return self._store

    @property
    def helpdesk(self):
        """The helpdesk settings: removals and cuts are reported to the helpdesk's outbox."""
        from controller.helpdesk import parse_helpdesk
        return parse_helpdesk(self.config.helpdesk)

    def require(self, permission: str, action: str | None = None, **where: Any) -> Decision:
        """The allowing decision; a refusal is audited and raises Refused."""
        decision = authorise(self.config, self.actor, permission)
        if not decision.allowed:
            audit.append(self.index, audit.entry_for(decision, action=action, **where))
            raise Refused(f"refused: {decision.reason}")
        return decision

    def require_configured(self, action: str) -> Decision:
        """For commands no single permission covers (the ROPA): any configured user; others are refused."""
        role = self.config.users.get(self.actor.name)
        decision = Decision(role is not None, f"{self.actor} (role {role}) may read the configuration" if role
                            else f"{self.actor} is not a configured user name", self.actor, action, role)
        if not decision.allowed:
            audit.append(self.index, audit.entry_for(decision, action=action))
            raise Refused(f"refused: {decision.reason}")
        return decision

    def record(self, decision: Decision, outcome: str | None = None, *, action: str | None = None,
               db: sqlite_utils.Database | None = None, **where: Any) -> int:
        """Append the audit row for an authorised action (in `db`'s transaction when given)."""
        return audit.append(self.index, audit.entry_for(decision, outcome, action=action, **where), db=db)


@contextmanager
def open_session(config_file: str | Path, data_dir: str | Path | None, user: str,
                 create_index: bool = False) -> Iterator[AdminSession]:
    if not user.strip():
        raise ConsentlineError("--as: expected a configured user name, got an empty one")
    config = load_config(config_file)
    index_path = Path(data_dir) / INDEX_FILENAME if data_dir else config.controller.index_path
    with Index(index_path, create=create_index) as index:
        yield AdminSession(config, index, Actor.user(user))

