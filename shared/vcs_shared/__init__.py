"""What the DOPA VCS services share, defined once.

Settings, logging, events, the CloudEvents envelope, broker and store helpers.
"""
