"""zoo-example: a template plugin for zoo-ensemble (see ``plugin.py``)."""
