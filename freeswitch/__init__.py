"""The switch side of Consentline: FreeSWITCH configuration (conf/) and an ESL-speaking emulator."""
