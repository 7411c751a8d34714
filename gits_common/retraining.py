"""What a retraining request may name, per task: PyCaret 3.3's model ids (with the names
PyCaret gives them) and metric names, which way each metric is better, and the metric a
job selects on by default. retraining_api checks requests against them; the admin
offers them as choices."""

from __future__ import annotations

from gits_common.schemas import Task

# PyCaret 3.3's `models()` of each experiment (xgboost is not installed); anything else
# would fail in the job. Anomaly models are pyod detectors.
# fmt: off
MODEL_NAMES: dict[Task, dict[str, str]] = {
    Task.regression: {
        "lr": "Linear Regression", "lasso": "Lasso Regression", "ridge": "Ridge Regression",
        "en": "Elastic Net", "lar": "Least Angle Regression",
        "llar": "Lasso Least Angle Regression", "omp": "Orthogonal Matching Pursuit",
        "br": "Bayesian Ridge", "ard": "Automatic Relevance Determination",
        "par": "Passive Aggressive Regressor", "ransac": "Random Sample Consensus",
        "tr": "TheilSen Regressor", "huber": "Huber Regressor", "kr": "Kernel Ridge",
        "svm": "Support Vector Regression", "knn": "K Neighbors Regressor",
        "dt": "Decision Tree Regressor", "rf": "Random Forest Regressor",
        "et": "Extra Trees Regressor", "ada": "AdaBoost Regressor",
        "gbr": "Gradient Boosting Regressor", "mlp": "MLP Regressor",
        "lightgbm": "Light Gradient Boosting Machine", "catboost": "CatBoost Regressor",
        "dummy": "Dummy Regressor",
    },
    Task.classification: {
        "lr": "Logistic Regression", "knn": "K Neighbors Classifier", "nb": "Naive Bayes",
        "dt": "Decision Tree Classifier", "svm": "SVM - Linear Kernel",
        "rbfsvm": "SVM - Radial Kernel", "gpc": "Gaussian Process Classifier",
        "mlp": "MLP Classifier", "ridge": "Ridge Classifier", "rf": "Random Forest Classifier",
        "qda": "Quadratic Discriminant Analysis", "ada": "Ada Boost Classifier",
        "gbc": "Gradient Boosting Classifier", "lda": "Linear Discriminant Analysis",
        "et": "Extra Trees Classifier", "lightgbm": "Light Gradient Boosting Machine",
        "catboost": "CatBoost Classifier", "dummy": "Dummy Classifier",
    },
    Task.anomaly: {
        "abod": "Angle-base Outlier Detection", "cluster": "Clustering-Based Local Outlier",
        "cof": "Connectivity-Based Local Outlier", "iforest": "Isolation Forest",
        "histogram": "Histogram-based Outlier Detection", "knn": "K-Nearest Neighbors Detector",
        "lof": "Local Outlier Factor", "svm": "One-class SVM detector",
        "pca": "Principal Component Analysis", "mcd": "Minimum Covariance Determinant",
        "sod": "Subspace Outlier Detection", "sos": "Stochastic Outlier Selection",
    },
}
# fmt: on
MODEL_IDS = {task: frozenset(names) for task, names in MODEL_NAMES.items()}
# PyCaret's metric names, and whether higher is better.
METRICS = {
    Task.regression: {
        "MAE": False,
        "MSE": False,
        "RMSE": False,
        "R2": True,
        "RMSLE": False,
        "MAPE": False,
    },
    Task.classification: {
        "Accuracy": True,
        "AUC": True,
        "Recall": True,
        "Prec.": True,
        "F1": True,
        "Kappa": True,
        "MCC": True,
    },
    # Of the flags at the model's threshold against the known 0/1 labels (1: anomaly).
    Task.anomaly: {"F1": True, "Precision": True, "Recall": True},
}
DEFAULT_METRIC = {Task.regression: "R2", Task.classification: "Accuracy", Task.anomaly: "F1"}
# Every metric where a higher value is better, whatever the task (a metric's direction
# is the same in every task that has it).
HIGHER_IS_BETTER = frozenset(
    metric for metrics in METRICS.values() for metric, higher in metrics.items() if higher
)
