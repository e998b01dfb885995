"""A training loop without a fixed seed: every run draws a new score around its true mean.

True effect: ``width`` of 8 or more adds 0.05 to the mean; ``momentum`` and ``dropout`` do nothing.
The run-to-run noise has sd 0.01 (the script ignores AUTORESEARCH_SEED, like many real ones).
"""
import random
import time

width = 4
momentum = 0.9
dropout = 0.1

rng = random.Random()  # seeded from the OS: no two runs alike
true_mean = 0.70 + (0.05 if width >= 8 else 0.0)
for epoch in range(3):
    time.sleep(0.01)
    loss = 1.0 / (epoch + 1)
    print(f"epoch {epoch} loss={loss:.3f}")
print(f"val_acc: {true_mean + rng.gauss(0.0, 0.01):.5f}")
