"""A deliberately weak baseline: logistic regression on scikit-learn's digits.

Run it on its own (`python digits.py`) or let autoresearch improve it:
    autoresearch run example_notebooks/digits.py --metric val_acc --maximize --steps 15
"""

import os

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# autoresearch: freeze
# The evaluation protocol: data and folds are fixed, proposals may not touch them.
SEED = int(os.environ.get("AUTORESEARCH_SEED", "0"))
X, y = load_digits(return_X_y=True)
if os.environ.get("AUTORESEARCH_SMOKE"):
    X, y = X[:300], y[:300]
# autoresearch: end

C = 0.0001  # search: log(1e-5, 100)
max_iter = 10
model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, tol=0.01))
scores = cross_val_score(model, X, y, cv=3)
print(f"val_acc: {scores.mean():.4f}")
