"""Fixtures every stage's tests share: isolated settings and a small catalogue built by the tests."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from freshrank.catalog.models import Movie
from freshrank.config import Settings


def _load_services_env() -> None:
    """Take the ports and URLs ``scripts/services.sh`` wrote (it moves a server off a port another process
    holds); variables already set in the environment win."""
    default_dir = Path(__file__).resolve().parents[1] / ".freshrank" / "services"
    services_dir = Path(os.environ.get("FRESHRANK_SERVICES_DIR", default_dir))
    ports = services_dir / "ports.env"
    if not ports.is_file():
        return
    for line in ports.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


_load_services_env()
# Tests build their own small registries: the packaged champion (on by default for users) only where a test
# turns it on (tests/classify/test_shipped*.py, the demo's champion test).
os.environ.setdefault("FRESHRANK_CLASSIFIER__SHIPPED", "false")

# The shared data, when it is present (tests that need it say so with the `shared_data` fixture).
SHARED_DATA = Path(
    os.environ.get("FRESHRANK_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)

SMALL_MOVIES: list[dict[str, object]] = [
    {
        "id": 1,
        "title": "Home Alone",
        "overview": "A boy left behind at Christmas defends his house from burglars.",
        "genres": ["Comedy", "Family"],
        "cast": ["Macaulay Culkin"],
        "directors": ["Chris Columbus"],
        "release_year": 1990,
    },
    {
        "id": 2,
        "title": "The Polar Express",
        "overview": "A doubting boy takes a magical train ride to the "
        "North Pole on Christmas Eve to meet Santa Claus.",
        "genres": ["Animation", "Family"],
        "cast": ["Tom Hanks"],
        "directors": ["Robert Zemeckis"],
        "release_year": 2004,
    },
    {
        "id": 3,
        "title": "Jurassic Park",
        "overview": "Scientists clone dinosaurs for a theme park, and the dinosaurs escape.",
        "genres": ["Adventure", "Science Fiction"],
        "cast": ["Sam Neill"],
        "directors": ["Steven Spielberg"],
        "release_year": 1993,
    },
    {
        "id": 4,
        "title": "Dawn of the Dead",
        "overview": "Survivors of a zombie outbreak hide in a shopping mall while the undead gather outside.",
        "genres": ["Horror"],
        "cast": ["Sarah Polley"],
        "directors": ["Zack Snyder"],
        "release_year": 2004,
    },
    {
        "id": 5,
        "title": "Finding Nemo",
        "overview": "A clownfish crosses the ocean to find his son.",
        "genres": ["Animation", "Family"],
        "cast": ["Albert Brooks"],
        "directors": ["Andrew Stanton"],
        "release_year": 2003,
    },
    {
        "id": 6,
        "title": "Halloween",
        "overview": "A masked killer returns to his home town on Halloween night "
        "to stalk teenage babysitters.",
        "genres": ["Horror", "Thriller"],
        "cast": ["Jamie Lee Curtis"],
        "directors": ["John Carpenter"],
        "release_year": 1978,
    },
    {
        "id": 7,
        "title": "The Dark Knight",
        "overview": "Batman faces the Joker, a criminal mastermind who plunges Gotham into chaos.",
        "genres": ["Action", "Crime"],
        "cast": ["Christian Bale"],
        "directors": ["Christopher Nolan"],
        "release_year": 2008,
    },
    {
        "id": 8,
        "title": "Elf",
        "overview": "Raised by Santa's elves at the North Pole, a man travels to New York "
        "at Christmas to find his father.",
        "genres": ["Comedy", "Family"],
        "cast": ["Will Ferrell"],
        "directors": ["Jon Favreau"],
        "release_year": 2003,
    },
]


@pytest.fixture
def small_movies() -> list[Movie]:
    return [Movie.model_validate(row) for row in SMALL_MOVIES]


@pytest.fixture
def small_catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "movies.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in SMALL_MOVIES:
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose state (databases, caches, models) lives in the test's own temp dir."""
    return Settings(data_dir=SHARED_DATA, state_dir=tmp_path / "state")


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "movies.jsonl.gz").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set FRESHRANK_DATA_DIR")
    return SHARED_DATA
