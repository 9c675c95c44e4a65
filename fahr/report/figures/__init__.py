"""One figures module per chapter, and ``common`` for what they share. Each function takes tidy tables and
returns a matplotlib Figure; importing any of them sets the book's seaborn theme."""

import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")
