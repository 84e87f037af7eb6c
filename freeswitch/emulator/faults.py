"""Fault injection for tests: what a real network and a real FreeSWITCH do to a controller on a bad day."""


class Faults:
    def __init__(self):
        self.refuse_outbound = False      # the socket app cannot connect (controller down or refusing)
        self.stall_outbound_s = 0.0       # virtual seconds before the socket app connects
        self.reply_delay_real_s = 0.0     # extra real seconds before every frame a listener sends
        self.stall_reads = False          # listeners stop reading what clients send (a hung switch)
        self.reply_delay_by_uuid = {}     # call uuid -> extra real seconds before every frame to its sockets

    def reply_delay_s(self, listener):
        session = listener.session
        if session is not None and session.uuid in self.reply_delay_by_uuid:
            return self.reply_delay_by_uuid[session.uuid]
        return self.reply_delay_real_s

    def delay_call(self, uuid, real_s):
        """Delay only what the sockets bound to one call receive (its outbound socket), from now on."""
        self.reply_delay_by_uuid[uuid] = real_s

    def stalled(self, listener):
        return self.stall_reads

    def clear(self):
        self.__init__()


def drop_connections(switch, outbound=True, inbound=True, uuid=None):
    """Cut ESL connections without a goodbye, as a crash or a network failure would. Returns how many."""
    dropped = 0
    for listener in list(switch.listeners):
        if listener.outbound and not outbound or (not listener.outbound and not inbound):
            continue
        if uuid is not None and (listener.session is None or listener.session.uuid != uuid):
            continue
        listener.kill()
        dropped += 1
    return dropped
