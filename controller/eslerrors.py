"""The ESL layer's exceptions. Catch `ESLError` for all of them."""


class ESLError(Exception):
    """Base of every error raised by the ESL layer."""


class ESLProtocolError(ESLError, ValueError):
    """The byte stream is not valid ESL; the connection cannot be trusted any more."""


class ESLTimeout(ESLError):
    """A wait ran out. `app_uuid` names the execute that was waited for, if any."""

    def __init__(self, message, app_uuid=None):
        super().__init__(message)
        self.app_uuid = app_uuid


class ESLCommandError(ESLError):
    """FreeSWITCH refused a command (a `-ERR ...` reply, or the wrong kind of reply)."""

    def __init__(self, message, reply_text=""):
        super().__init__(message)
        self.reply_text = reply_text


class ESLConnectionError(ESLError):
    """The inbound connection is down, could not be made, or went away."""


class ESLAuthError(ESLConnectionError):
    """FreeSWITCH rejected the password (or the client's address)."""


class CallGone(ESLError):
    """The call hung up, or its socket went away, while we needed it.

    `reason` is one of CALL_GONE_REASONS; `hangup_cause` is FreeSWITCH's cause
    when known; `app_uuid` names the execute that was in flight, if any, so a
    caller can still look up its (late) completion with `wait_completion`.
    """

    def __init__(self, reason, hangup_cause=None, app_uuid=None):
        detail = reason if hangup_cause is None else "%s (%s)" % (reason, hangup_cause)
        super().__init__("call gone: %s" % detail)
        self.reason = reason
        self.hangup_cause = hangup_cause
        self.app_uuid = app_uuid

    @property
    def socket_lost(self):
        """True when the socket itself is gone, so nothing more can arrive."""
        return self.reason in SOCKET_LOST_REASONS


HANGUP = "hangup"                 # CHANNEL_HANGUP / CHANNEL_HANGUP_COMPLETE for this call
LINGER_NOTICE = "linger-notice"   # disconnect notice with Content-Disposition: linger
DISCONNECT_NOTICE = "disconnect-notice"
SOCKET_CLOSED = "socket-closed"   # EOF without a notice
SOCKET_ERROR = "socket-error"
PROTOCOL_ERROR = "protocol-error"
SEND_TIMEOUT = "send-timeout"     # a partial write left the stream unusable
CLOSED = "closed"                 # we closed it
SOCKET_LOST_REASONS = frozenset({DISCONNECT_NOTICE, SOCKET_CLOSED, SOCKET_ERROR, PROTOCOL_ERROR,
                                 SEND_TIMEOUT, CLOSED})
CALL_GONE_REASONS = SOCKET_LOST_REASONS | {HANGUP, LINGER_NOTICE}
