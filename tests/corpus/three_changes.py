"""Three settings; once ``a`` is large the other two no longer matter (they are hidden by a max)."""
a = 1
b = 1
c = 1
score = max(10 * a, 5 * b + 5 * c)
print(f"score: {score}")
