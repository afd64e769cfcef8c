"""Benchmarks (`make bench`): each section compares against a baseline in the same run and prints ratios."""
