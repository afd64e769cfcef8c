"""freshrank: keep search rankings fresh with trending hashtags and zero-shot NLI classification."""

__version__ = "0.1.0"
