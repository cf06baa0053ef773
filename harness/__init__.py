"""rollback-rehearsal: rehearse a production rollback before anyone needs it."""

__version__ = "0.1.0"
