"""People with accounts: office clerks and operators who sign in to the pages.

``model`` is the domain (no I/O): who a person is, what they may see (the same
:class:`~vcs_shared.auth.Principal` as a bearer token), the password and lockout
rules. ``store`` keeps people, invites and sessions in the intake's own
collections. ``accounts`` is what the pages and ``vcs user`` call.
"""
