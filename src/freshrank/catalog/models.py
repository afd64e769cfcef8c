"""The movie record that every stage shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Movie(BaseModel):
    """One catalogue entry (the fields of ``movies.jsonl.gz``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    title: str = Field(min_length=1)
    overview: str = Field(min_length=1)
    tagline: str = ""
    imdb_id: str | None = None
    genres: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()
    directors: tuple[str, ...] = ()
    release_date: str | None = None
    release_year: int | None = None
    runtime: float | None = None
    vote_average: float | None = None
    vote_count: int | None = None
    popularity_pct: float | None = None

    @field_validator("tagline", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return "" if value is None else value

    @property
    def document(self) -> str:
        """The text a classifier reads: title, tagline and overview."""
        return " ".join(part for part in (self.title + ".", self.tagline, self.overview) if part)
