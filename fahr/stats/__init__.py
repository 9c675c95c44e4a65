"""Clinical statistics: Cox models, likelihood-ratio tests, concordance and Kaplan–Meier."""
