"""Evaluation: the attribute oracle (any image folder) and generator quality figures."""
