"""Explaining a model: attribution maps, their faithfulness, and facial regions."""
