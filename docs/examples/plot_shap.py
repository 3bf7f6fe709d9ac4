"""
What a model listens to: the SHAP summary
=========================================

A model fitted on generated windows of 12 subjects (:func:`geoengage.testing.synthetic_windows`: ``signal__mean``
carries the label, ``noise__std`` nothing, ``person__mean`` only who the subject is), explained by SHAP: the mean
absolute contribution of each feature, and each window's contributions coloured by the feature's value.
"""

import geoengage as ge
from geoengage.report.explain import explain_model
from geoengage.testing import synthetic_windows

windows = synthetic_windows(0, n_subjects=12, per_subject=30)
model = ge.EngagementModel("xgboost", features=["signal__mean", "noise__std", "person__mean"]).fit(
    windows, windows["label"].to_numpy())
explanation = explain_model(model, windows)
fig = ge.plot.importance(explanation)

# %%
# Each dot is a window: a high ``signal__mean`` (red) pushes towards class 1.
fig = ge.plot.shap_beeswarm(explanation, class_index=1)
