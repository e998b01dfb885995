"""Ridge regression with the test set cut by a variable: ``X[:n_split], X[n_split:]``."""
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

X, y = make_regression(n_samples=400, n_features=20, noise=25.0, random_state=0)
n_split = 300
X_train, X_test = X[:n_split], X[n_split:]
y_train, y_test = y[:n_split], y[n_split:]

alpha = 30.0
model = Ridge(alpha=alpha)
model.fit(X_train, y_train)
print(f"r2: {r2_score(y_test, model.predict(X_test)):.5f}")
