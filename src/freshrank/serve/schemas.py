"""The web API's request and response models and their limits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from freshrank.serve.snapshots import MAX_NAME_CHARS, NAME_PATTERN

K = 10
MAX_QUERY_CHARS = 500
MAX_HASHTAG_CHARS = 280  # a tweet; the judgments store refuses keys over 255 with its own clear message
MAX_GENRE_CHARS = 100
MAX_TRENDS = 20

Hashtag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_HASHTAG_CHARS)]
Genre = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_GENRE_CHARS)]
QueryText = Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS)]


# Inputs ----------------------------------------------------------------------------------------------


class SearchParams(BaseModel):
    """A query as the page states it: text, genre filter, the trends that boost it (none given = live)."""

    model_config = ConfigDict(extra="forbid")

    q: QueryText = ""
    genre: Genre = ""
    trend: list[Hashtag] = Field(default_factory=list, max_length=MAX_TRENDS)
    boost: bool = True
    limit: int = Field(default=10, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)


class CompareParams(SearchParams):
    mode: Literal["baseline", "models"] = "baseline"
    candidate: Annotated[str, StringConstraints(max_length=100)] = ""


class JudgmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    genre: Genre = ""
    doc_id: int = Field(ge=0)
    grade: int = Field(ge=0, le=3)


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN
        ),
    ]
    q: QueryText = ""
    genre: Genre = ""
    trend: list[Hashtag] = Field(default_factory=list, max_length=MAX_TRENDS)
    limit: int = Field(default=20, ge=1, le=100)
    replace: bool = False


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    force: bool = False


# Outputs ---------------------------------------------------------------------------------------------


class Contribution(BaseModel):
    label: str
    hashtag: str
    trend_score: float
    weight: float  # boost_weight × the label's weight among the trends (search/weights.py)
    contribution: float  # weight × trend_score


class HitOut(BaseModel):
    rank: int
    id: int
    title: str
    release_year: int | None
    genres: list[str]
    overview: str
    score: float
    text_score: float
    contributions: list[Contribution]
    grade: int | None


class QueryOut(BaseModel):
    q: str
    genre: str
    trends: list[str]  # the hashtags that boosted this ranking ([] = no boost)
    key: str  # what judgments are stored under ("" = nothing to judge: no text and no trend)


class SearchOut(BaseModel):
    query: QueryOut
    total: int
    offset: int
    limit: int
    boost_weight: float
    hits: list[HitOut]
    warnings: list[str]


class QueryMetrics(BaseModel):
    query_id: str  # the QueryId text ``key|genre`` its judgments and figures go by ("" = nothing judged)
    key: str
    genre: str
    ndcg_at_10: float | None
    p_at_10: float | None
    judged_at_10: float | None
    judged_in_top: int
    judgments: int
    relevant: int


class TrendOut(BaseModel):
    hashtag: str
    label: str
    score: float  # burst z (trends/score.py)
    count: int
    baseline: float
    history: list[int]
    authors: int | None = None
    expected: float | None = None  # posts expected without a burst
    evidence: int | None = None  # posts tested (capped per author)
    p_value: float | None = None


class CompareRow(BaseModel):
    rank: int
    id: int
    title: str
    score: float
    grade: int | None
    other_rank: int | None  # rank on the other side (None = not in its list)
    movement: int | None  # positive = higher here than on the other side


class CompareSide(BaseModel):
    name: str
    query: QueryOut
    metrics: QueryMetrics
    rows: list[CompareRow]


class CompareOut(BaseModel):
    mode: str
    left: CompareSide
    right: CompareSide


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    components: dict[str, str]  # "ok" or "degraded: why" per component (search, trends, classifier)
