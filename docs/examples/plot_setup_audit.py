"""
The set-up audit: features that know who the person is
======================================================

A feature whose variance lies mostly between subjects (the camera's height, a resting face) lets a model learn who
someone is instead of how engaged they are, and that does not carry to new people. The audit measures each feature's
between-subject share of variance (eta², bars; red where it passes the flag line) and how well it alone identifies
the subject (ticks). On generated windows, ``person__mean`` is flagged.
"""

import geoengage as ge
from geoengage.modeling.audit import setup_audit
from geoengage.testing import synthetic_windows

windows = synthetic_windows(0, n_subjects=12, per_subject=30)
audit = setup_audit(windows, features=["signal__mean", "noise__std", "person__mean"])
print(audit.flagged)
fig = ge.plot.setup_audit(audit)
