"""frontend_console: the auditors command line (imported as frontend_console)."""
