"""What the book shows: headline results, the paper's claims and verdicts, figures, the book build."""
