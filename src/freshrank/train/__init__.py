"""Stage 6: train, version, gate and promote NLI models."""
