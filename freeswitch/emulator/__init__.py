"""A FreeSWITCH 1.10 stand-in that speaks the real Event Socket protocol, for tests, benchmarks and the demo."""
