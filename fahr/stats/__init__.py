"""Clinical statistics: Cox models, likelihood-ratio tests, concordance, Kaplan–Meier and agreement."""

ALPHA = 0.05  # the significance level of every test and verdict in the book
