"""The admin scripts behind `consentline`: recordings, erasure, access, retention, legal hold, ROPA.

Pure cores (retention rules, ROPA, erasure plans) sit beside thin modules that touch the index and the
media store; the `cli_*` modules are the click shells. Every command acts as a configured user (`--as`),
is checked against the permission matrix and is written to the audit log, refusals included.
"""
