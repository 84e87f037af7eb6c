"""Index changes and the helpdesk events that report them, committed in one transaction.

`CallEvents.write(change, event_type, ...)` runs `change(index)` and enqueues the event in the outbox inside the
same transaction (in the index worker thread): either both are on disk or neither is.
"""

from controller import outbox
from controller.helpdesk import CallFacts


class CallEvents:
    def __init__(self, index_io, settings, facts: CallFacts, on_enqueued=None):
        self.index_io = index_io
        self.settings = settings
        self.facts = facts
        self.on_enqueued = on_enqueued or (lambda: None)

    def write(self, change, event_type=None, *, recording_id=None, data=None, also=()):
        """`also`: further (event_type, data) pairs that report the same change."""
        settings, facts = self.settings, self.facts
        events = ([(event_type, data)] if event_type else []) + list(also)

        def in_transaction(index):
            with index.transaction(f"{event_type or 'change'} {facts.call_uuid}") as db:
                result = change(index)
                if settings is not None:
                    for kind, payload in events:
                        outbox.emit(db, settings, kind, facts, recording_id=recording_id, data=payload)
                return result
        result = self.index_io.run(in_transaction)
        if events and settings is not None and settings.endpoints:
            self.on_enqueued()
        return result
