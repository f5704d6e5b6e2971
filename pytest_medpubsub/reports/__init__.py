"""The HTML side of a run's report: one page per run, an index per session, the browser check.

`report.json` (pytest_medpubsub.report) stays the source of truth: every page here is rendered
from that document alone, so `medpubsub report DIR` can draw the same page again from a file
copied out of CI long after the run.
"""
