"""Consentline media pipeline: spool tailing, chunk store, hold-back window, redaction, export."""
