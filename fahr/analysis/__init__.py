"""One module per chapter: a cohort table in, that chapter's tables out (truth optional)."""
