"""Drops a column with numpy: axis 1 is the only valid column axis of this 2-d array."""
import numpy as np

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 5))
y = X[:, 0] * 2.0 + X[:, 1]
features = np.delete(X, 4, axis=1)
weight = 1.5
pred = features[:, 0] * weight + features[:, 1]
print(f"mse: {float(np.mean((pred - y) ** 2)):.6f}")
