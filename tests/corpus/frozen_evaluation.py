"""The evaluation is frozen: only it may print the metric."""
import os

depth = 3
predictions = [min(1.0, 0.2 * depth)] * 10

# autoresearch: freeze
labels = [1.0] * 10
accuracy = sum(1 for p, t in zip(predictions, labels) if abs(p - t) < 0.25) / len(labels)
print(f"val_acc: {accuracy:.3f}")
# autoresearch: end
