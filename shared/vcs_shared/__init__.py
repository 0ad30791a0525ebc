"""What the DOPA VCS services share, defined once: settings, logging, events, broker and store helpers."""
