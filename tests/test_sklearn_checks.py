"""scikit-learn's own estimator checks (check_estimator's list) on FastFNN and FastFNNRegressor.

Every check that MLPClassifier and MLPRegressor pass, ours pass; pandas is installed in dev, so the
DataFrame checks run too. Small max_iter keeps the whole list to a few seconds.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastfnn import FastFNN, FastFNNRegressor  # noqa: E402

#: float32 (the default dtype) rounds the weighted and the repeated fits differently by one unit
#: in the last place (3e-8 to 6e-8); the check asks 1e-7 relative, on dense and on sparse X (made
#: dense by fastfnn.validation.check_X). The float64 estimators run it.
FLOAT32_ROUNDING = {
    f"check_sample_weight_equivalence_on_{kind}_data":
        "float32 rounding: weighted and repeated rows agree to one float32 ulp, the check asks "
        "1e-7 relative (it passes in float64, below)"
    for kind in ("dense", "sparse")
}


def expected_failures(estimator):
    return FLOAT32_ROUNDING if estimator.dtype == "float32" else {}


@parametrize_with_checks([
    FastFNN(max_iter=50, backend="numpy"),
    FastFNN(max_iter=50, backend="numpy", dtype="float64"),
    FastFNN(max_iter=50, backend="numpy", dtype="float64", solver="sgd",
            learning_rate="adaptive"),
    FastFNNRegressor(max_iter=50, backend="numpy"),
    FastFNNRegressor(max_iter=50, backend="numpy", dtype="float64"),
], expected_failed_checks=expected_failures)
def test_scikit_learn_check(estimator, check):
    check(estimator)


def test_lbfgs_passes_the_sample_weight_equivalence_check():
    """The check scikit-learn runs on MLPClassifier with solver='lbfgs' (its test_common)."""
    from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data
    check_sample_weight_equivalence_on_dense_data(
        "FastFNN", FastFNN(solver="lbfgs", max_iter=50, backend="numpy", dtype="float64"))


@pytest.mark.parametrize("estimator", [FastFNN(max_iter=50, backend="numpy"),
                                       FastFNNRegressor(max_iter=50, backend="numpy")],
                         ids=["FastFNN", "FastFNNRegressor"])
def test_dataframe_column_names_are_checked(estimator):
    """Not in check_estimator's list: feature_names_in_ and scikit-learn's name checks at
    predict, predict_proba, score and a second partial_fit."""
    from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency
    pytest.importorskip("pandas")
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)


def test_early_stopping_passes_the_one_label_sample_weights_check():
    """Not in check_estimator's list for early stopping: held-out rows may all weigh zero."""
    from sklearn.utils.estimator_checks import check_classifiers_one_label_sample_weights
    check_classifiers_one_label_sample_weights(
        "FastFNN", FastFNN(max_iter=50, backend="numpy", early_stopping=True))
