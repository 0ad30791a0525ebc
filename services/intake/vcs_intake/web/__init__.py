"""The people's side of the intake: server-rendered pages for district clerks.

Thai first with an English switch (babel catalogs in ``locale/``), Buddhist-era
dates (``dates``), every asset served by the intake itself (``assets``: its own
CSS and JavaScript, and npm packages installed by ``scripts/ensure-web-assets.sh``).
``install`` wires it all into the intake's app at the composition root.
"""
