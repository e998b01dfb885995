"""Boosting rounds logged the way xgboost's demos do: several losses on one line per round."""
import math

eta = 0.3
rounds = 6
train, held = 0.69, 0.69
for i in range(rounds):
    train *= math.exp(-eta * 0.5)
    held = held * math.exp(-eta * 0.35) + 0.002 * i
    print(f"[{i}]\teval-logloss:{held:.5f}\ttrain-logloss:{train:.5f}")
print(f"eval-error:{math.exp(-held) * 0.1:.5f} train-error:{math.exp(-train) * 0.1:.5f}")
