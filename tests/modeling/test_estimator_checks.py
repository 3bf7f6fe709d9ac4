"""scikit-learn's estimator checks on the tabular model (``EngagementModel``): what a scikit-learn user may assume
holds, and the checks that cannot apply, each with its reason."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from geoengage.modeling.train import EngagementModel

#: Checks that do not apply to this model, and why.
NOT_APPLICABLE = {
    "check_sample_weight_equivalence_on_dense_data":
        "calibration and the decision rule are fitted on inner folds: a window repeated twice can fall in both an "
        "inner training and an inner test fold, which a weight of 2 cannot mimic",
    "check_classifiers_classes":
        "labels that are names need their order or the engaged classes (classes=, positive=): engagement levels "
        "have a meaning the alphabet does not give, so the model asks instead of guessing",
    "check_classifiers_regression_target":
        "class labels are canonical values, and fractional ones are classes (EmotiW's 0, 0.33, 0.66, 1 levels)",
    "check_class_weight_classifiers":
        "class_weight takes only 'balanced'; imbalance is handled by the decision rule fitted on inner folds",
}


# The logistic model with argmax decisions: with the default rule (a threshold fitted for balanced accuracy), predict
# may differ from predict_proba's argmax for windows between 0.5 and the threshold, by design; on the checks' data the
# XGBoost model's threshold happens to change no decision.
@parametrize_with_checks([EngagementModel(), EngagementModel("logistic", decision="argmax")],
                         expected_failed_checks=lambda estimator: NOT_APPLICABLE)
def test_scikit_learn_conventions(estimator, check) -> None:
    check(estimator)
