"""Label spreading on digits, in the style of scikit-learn's gallery example.

A few labelled points, the rest of the data is what the model is scored on: the number of
labelled points decides the evaluation set (``indices[n_labeled_points:]``).
"""
import numpy as np
from sklearn import datasets
from sklearn.metrics import accuracy_score
from sklearn.semi_supervised import LabelSpreading

digits = datasets.load_digits()
rng = np.random.RandomState(2)
indices = np.arange(len(digits.data))
rng.shuffle(indices)

X = digits.data[indices[:340]]
y = digits.target[indices[:340]]

n_total_samples = len(y)
n_labeled_points = 40

indices = np.arange(n_total_samples)
unlabeled_set = indices[n_labeled_points:]

y_train = np.copy(y)
y_train[unlabeled_set] = -1

lp_model = LabelSpreading(gamma=0.25, max_iter=20)
lp_model.fit(X, y_train)
predicted_labels = lp_model.transduction_[unlabeled_set]
true_labels = y[unlabeled_set]

print(f"accuracy: {accuracy_score(true_labels, predicted_labels):.4f}")

try:  # the gallery draws the uncertain digits after the score
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(7, 5))
    plt.legend(loc="upper right")
    fig.savefig("digits.png")
except ImportError:
    pass
