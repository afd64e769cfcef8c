"""The classifier the settings name: the embedding baseline, a registered NLI model, or a remote server."""

from __future__ import annotations

from freshrank.classify.base import Classifier
from freshrank.config import Settings


def load_classifier(settings: Settings, name: str | None = None) -> Classifier:
    """``embedding`` | ``champion`` | a registry version id; ``classifier.url`` set means a KServe server."""
    name = name or settings.classifier.name
    if settings.classifier.url:
        from freshrank.classify.remote import RemoteClassifier

        return RemoteClassifier(settings.classifier.url, settings=settings)
    if name == "embedding":
        from freshrank.classify.embedding import EmbeddingClassifier

        return EmbeddingClassifier(cache_dir=settings.cache_dir)
    from freshrank.classify.registry import RegistryReader

    return RegistryReader.from_settings(settings).load(name, settings=settings)
