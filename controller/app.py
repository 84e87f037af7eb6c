"""The running controller: config, index, media store, the outbound call server and the inbound ESL link."""

import functools
import logging
import os

import gevent
import soundfile

from controller.agentactions import AgentCodes
from controller.agentlink import AgentCodeLink
from controller.callflow import CallFlow
from controller.eslinbound import InboundSupervisor
from controller.helpdesk import parse_helpdesk
from controller.index import Index
from controller.indexio import OffHubIndex
from controller.restart import clean_up_after_restart, stop_switch_recordings
from controller.service import CallServer, install_sigterm_handler
from controller.webhooks import HelpdeskService
from media import MediaStore, SpoolTailer

log = logging.getLogger(__name__)

# Spool tailers wake up about SPOOL_POLLS_PER_S times a second in all: each polls every 0.05 s while calls are
# few and more slowly (up to 0.5 s) when they are many. At a fixed 0.05 s, 1,000 calls meant 20,000 wake-ups a
# second and most of a core. Live edits (cut, pause, mask) and the finish catch the spool up first, so a slower
# poll loses nothing there; 0.5 s is 16 KiB a read at 8 kHz stereo, under the reader's 32 KiB.
SPOOL_POLL_MIN_S = 0.05
SPOOL_POLL_MAX_S = 0.5
SPOOL_POLLS_PER_S = 2000


@functools.lru_cache(maxsize=256)
def prompt_seconds(path):
    """A prompt's length (the check that a notice played in full needs it)."""
    return soundfile.info(str(path)).duration


def spool_poll_s(active_calls):
    return min(SPOOL_POLL_MAX_S, max(SPOOL_POLL_MIN_S, active_calls / SPOOL_POLLS_PER_S))


class Controller:
    def __init__(self, config, *, listen=None, esl=None, password=None, data_dir=None, max_calls=1000,
                 inbound=True, observer=None):
        self.config = config
        settings = config.controller
        self.listen_host, self.listen_port = listen or (settings.listen_host, settings.listen_port)
        self.esl_host, self.esl_port = esl or (settings.esl.host, settings.esl.port)
        self.password = password or settings.esl.password
        data_dir = data_dir or settings.data_dir
        self.index = Index(os.path.join(str(data_dir), "consentline.db"))
        self.store = MediaStore(settings.recordings_dir)
        self.helpdesk_settings = parse_helpdesk(config.helpdesk)
        self.helpdesk = None
        if self.helpdesk_settings.endpoints or self.helpdesk_settings.links_listen:
            self.helpdesk = HelpdeskService(self.index, self.helpdesk_settings, settings.recordings_dir)
        index_io = OffHubIndex(self.index)
        # A second inbound connection of its own: the agent legs' code events, and tones when the call's is slow.
        self.agent_link = AgentCodeLink.connect(self.esl_host, self.esl_port, self.password) if inbound else None
        self.agent_codes = AgentCodes(config, index_io, self.agent_link)  # checks every process's agent_codes
        self.flow = CallFlow(config, index_io, self.store, prompt_seconds=prompt_seconds,
                             tailer_factory=self._tail_spool, observer=observer, helpdesk=self.helpdesk_settings,
                             on_event=self.helpdesk.wake if self.helpdesk else None, agent_codes=self.agent_codes)
        self.server = CallServer(self.flow, host=self.listen_host, port=self.listen_port, max_calls=max_calls)
        self.inbound = InboundSupervisor(self.esl_host, self.esl_port, self.password) if inbound else None

    def start(self):
        reports = self.store.recover()
        for report in reports:
            log.info("recovered recording %s", getattr(report, "recording_id", report))
        orphans, _ = clean_up_after_restart(self.index, self.store, self.config.controller.spool_dir)
        if self.helpdesk is not None:
            self.helpdesk.start()
        self.server.start()
        if self.inbound is not None:
            self.inbound.start()
            if orphans:
                gevent.spawn(stop_switch_recordings, self.inbound, orphans)
        if self.agent_link is not None:
            self.agent_link.start()
        return self

    def _tail_spool(self, recording, spool_path):
        return SpoolTailer(recording, spool_path, poll_s=spool_poll_s(self.server.active_calls))

    @property
    def port(self):
        return self.server.port

    def install_signal_handlers(self, drain_timeout_s=30.0):
        return install_sigterm_handler(self.server, drain_timeout_s)

    def stop(self, drain_timeout_s=10.0):
        self.server.stop(drain_timeout_s)
        if self.inbound is not None:
            self.inbound.stop()
        if self.agent_link is not None:
            self.agent_link.stop()
        if self.helpdesk is not None:
            self.helpdesk.stop()
        self.flow.index.close()
        self.index.close()
