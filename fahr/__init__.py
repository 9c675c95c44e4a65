"""FAHR-Face, reproduced."""
