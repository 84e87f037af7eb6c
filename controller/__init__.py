"""Consentline controller: drives FreeSWITCH calls over ESL and records only with lawful consent."""

__version__ = "0.1.0"
