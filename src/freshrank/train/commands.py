"""``freshrank train`` and ``freshrank models ...``: train, evaluate, register, gate, promote, roll back."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from freshrank.config import Settings, cli_settings
from freshrank.console import err, out, print_json
from freshrank.exitcodes import EXIT_ERROR, EXIT_USAGE

log = logging.getLogger(__name__)
T = TypeVar("T")

models_app = typer.Typer(
    help="The model registry: list, show, evaluate, register, promote (gated), roll back, export.",
    no_args_is_help=True,
)

JSON_OPTION = typer.Option(False, "--json", help="One JSON document on stdout (logs stay on stderr).")
PARAMS_OPTION = typer.Option(None, "--params", help="Parameters file (params.yaml, as DVC uses).")


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Known failures become one red line and exit code 1 (2 for bad parameters)."""
    from freshrank.classify.registry import RegistryError
    from freshrank.train.lifecycle import LifecycleError

    try:
        yield
    except (RegistryError, LifecycleError, FileNotFoundError, ValueError) as exc:
        log.debug("command failed", exc_info=True)
        err.print(f"[red]error:[/] {escape(str(exc))}")
        code = EXIT_USAGE if "bad training parameters" in str(exc) else EXIT_ERROR
        raise typer.Exit(code) from exc


def _run(action: Callable[[], T]) -> T:
    with _clear_errors():
        return action()


def _settings(params_file: Path | None) -> tuple[Settings, dict[str, Any]]:
    from freshrank.train.lifecycle import read_params, settings_for_params

    settings = cli_settings()
    params = _run(lambda: read_params(params_file or settings.lifecycle.params_file))
    return settings_for_params(settings, params), params


def _metrics_line(metrics: Any) -> str:
    if metrics is None:
        return "n/a"
    ndcg = "n/a" if metrics.ndcg_at_10 is None else f"{metrics.ndcg_at_10:.4f}"
    acc = "n/a" if metrics.dev_accuracy is None else f"{metrics.dev_accuracy:.4f}"
    return f"nDCG@10 {ndcg}, dev accuracy {acc}"


# freshrank train -------------------------------------------------------------------------------------


def train_command(
    model_type: str = typer.Option(None, "--model-type", help="bi-encoder | cross-encoder | hybrid."),
    max_pairs: int = typer.Option(None, "--max-pairs", min=1, help="Train on at most this many NLI pairs."),
    catalog_pairs: int = typer.Option(
        None, "--catalog-pairs", min=0, help="In-domain (overview, genre) pairs added from the catalogue."
    ),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Passes over the training pairs."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after this many optimiser steps."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Pairs per optimiser step."),
    lr: float = typer.Option(None, "--lr", min=0.0, help="Learning rate of the fine-tuned encoder."),
    template: str = typer.Option(
        None, "--template", help="NLI hypothesis template with {label}, e.g. 'This movie is about {label}.'"
    ),
    cosine_template: str = typer.Option(
        None, "--cosine-template", help="First-stage (cosine) label text with {label}, e.g. '{label} movie'."
    ),
    rerank_top_k: int = typer.Option(
        None, "--rerank-top-k", min=1, help="Candidates per label the cross-encoder re-scores."
    ),
    device: str = typer.Option(None, "--device", help="cpu | cuda | cuda:N (default: cuda when present)."),
    data: list[str] = typer.Option(
        None,
        "--data",
        help="NLI pairs: JSONL/CSV/Parquet file or hub:<name> (repeatable). Default: settings.",
    ),
    base_model: str = typer.Option(None, "--base-model", help="Base encoder: a local path or hub name."),
    params_file: Path = PARAMS_OPTION,
    out_dir: Path = typer.Option(None, "--out", help="Write the model here (default: a staging dir)."),
    register: bool = typer.Option(True, "--register/--no-register", help="Evaluate and register the model."),
    promote: bool = typer.Option(False, "--promote", help="Promote it when it passes the gate."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fine-tune an NLI zero-shot model, evaluate it (dev accuracy, zero-shot nDCG@10) and register it.

    Parameters come from params.yaml (sections prepare and train), then from the flags. With --data, the
    pairs are used as given (e.g. the DVC prepare stage's output); without it, max_pairs NLI pairs are
    sampled from the shared data and catalog_pairs in-domain pairs are added.

    Example: freshrank train --max-pairs 2000 --catalog-pairs 2000 --epochs 1 --promote
    """
    from freshrank.train.lifecycle import train_and_register, train_params

    settings, params = _settings(params_file)
    overrides = {"model_type": model_type, "max_pairs": max_pairs, "catalog_pairs": catalog_pairs}
    overrides |= {"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "lr": lr}
    overrides |= {"template": template, "cosine_template": cosine_template, "rerank_top_k": rerank_top_k}
    overrides |= {"device": device, "data": list(data) if data else None, "base_model": base_model}
    train = _run(lambda: train_params(params, prepared=bool(data), **overrides))
    with err.status(f"training {train.model_type} (progress in the log)"):
        outcome = _run(
            lambda: train_and_register(
                settings, train, out_dir=out_dir, register=register, promote_if_better=promote
            )
        )
    if as_json:
        print_json(outcome.to_dict())
        return
    out.print(f"model: {outcome.model_dir}")
    out.print(f"dev accuracy (training run): {outcome.train['dev_accuracy']:.4f}")
    if outcome.card:
        out.print(f"registered as [bold]{outcome.card['version']}[/]: {_metrics_line(outcome.metrics)}")
    if outcome.promotion:
        _print_promotion(outcome.promotion)


# freshrank models ------------------------------------------------------------------------------------


@models_app.command("list")
def list_command(as_json: bool = JSON_OPTION) -> None:
    """Registered versions with their metrics; the champion is marked."""
    from freshrank.classify.registry import EMBEDDING
    from freshrank.train.registry import Registry

    registry = Registry.from_settings(cli_settings())
    champion = registry.champion()
    cards = [registry.card(v) for v in registry.versions()]
    if registry.has_card(EMBEDDING):
        cards.insert(0, registry.card(EMBEDDING))
    if as_json:
        rows = [{**c.to_dict(), "champion": c.version == champion} for c in cards]
        print_json({"champion": champion, "models": rows})
        return
    table = Table("", "version", "type", "nDCG@10", "dev acc", "created", "parent")
    for card in cards:
        m = card.metrics
        table.add_row(
            "*" if card.version == champion else "",
            card.version,
            card.model_type,
            "n/a" if m.ndcg_at_10 is None else f"{m.ndcg_at_10:.4f}",
            "n/a" if m.dev_accuracy is None else f"{m.dev_accuracy:.4f}",
            card.created,
            card.parent,
        )
    out.print(table)
    out.print(f"champion: [bold]{champion}[/]" + ("" if cards else " (nothing registered yet)"))


@models_app.command("show")
def show_command(
    version: str = typer.Argument("champion", help="A version, a unique prefix, 'champion' or 'embedding'."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The model card of one version."""
    from freshrank.train.registry import Registry

    settings = cli_settings()
    registry = Registry.from_settings(settings)
    resolved = _run(lambda: registry.resolve(version))
    if not registry.has_card(resolved):  # the embedding baseline before it was ever measured
        from freshrank.train.lifecycle import baseline_card

        _run(lambda: baseline_card(settings, registry))
    card = registry.card(resolved)
    if as_json:
        history = [e.__dict__ for e in registry.history()]
        print_json(
            {**card.to_dict(), "champion": resolved == registry.champion(), "champion_history": history}
        )
    else:
        out.print(card.markdown())


@models_app.command("promote")
def promote_command(
    version: str = typer.Argument(..., help="The version (or unique prefix) to promote."),
    force: bool = typer.Option(False, "--force", help="Promote even when the gate says no."),
    rescore: bool = typer.Option(True, "--rescore/--no-rescore", help="Re-score the current trends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make VERSION the champion if it beats the current one (nDCG@10 up, dev accuracy at most 1 pt down).

    Exit code 1 when the gate refuses it.
    """
    from freshrank.train.lifecycle import promote

    result = _run(lambda: promote(cli_settings(), version, force=force, rescore=rescore))
    if as_json:
        print_json(result.to_dict())
    else:
        _print_promotion(result)
    if not result.promoted and result.champion_before != result.candidate:
        raise typer.Exit(EXIT_ERROR)


@models_app.command("rollback")
def rollback_command(
    rescore: bool = typer.Option(True, "--rescore/--no-rescore", help="Re-score the current trends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make the previous champion current again."""
    from freshrank.train.lifecycle import rollback

    result = _run(lambda: rollback(cli_settings(), rescore=rescore))
    if as_json:
        print_json(result.to_dict())
    else:
        out.print(f"champion: {result.champion_before} -> [bold]{result.champion_after}[/]")


@models_app.command("evaluate")
def evaluate_command(
    model_dir: Path = typer.Argument(..., help="A trained model directory, or 'embedding' for the baseline."),
    params_file: Path = PARAMS_OPTION,
    metrics_out: Path = typer.Option(
        None, "--metrics-out", help="Also write the metrics here (DVC metrics)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Zero-shot nDCG@10 on the configured judgments and NLI dev accuracy of a model directory."""
    from freshrank.classify.registry import EMBEDDING
    from freshrank.train.lifecycle import baseline_card, evaluate_model_dir
    from freshrank.train.registry import Registry

    settings, _ = _settings(params_file)
    if str(model_dir) == EMBEDDING:
        metrics = _run(lambda: baseline_card(settings, Registry.from_settings(settings)).metrics)
    else:
        metrics = _run(lambda: evaluate_model_dir(model_dir, settings))
    doc: dict[str, Any] = {"ndcg_at_10": metrics.ndcg_at_10, "dev_accuracy": metrics.dev_accuracy}
    doc |= {"per_query": metrics.per_query, "judgments_hash": metrics.judgments_hash}
    if metrics_out:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if as_json:
        print_json(doc)
    else:
        out.print(_metrics_line(metrics))
        for query, value in sorted(metrics.per_query.items()):
            out.print(f"  {escape(query)}: {value:.4f}")


@models_app.command("register")
def register_command(
    model_dir: Path = typer.Argument(
        ..., help="A trained model directory (e.g. models/export after dvc repro)."
    ),
    params_file: Path = PARAMS_OPTION,
    promote: bool = typer.Option(False, "--promote", help="Promote it when it passes the gate."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate and register a model directory (its version is its content hash)."""
    from freshrank.train.lifecycle import register_and_gate

    settings, params = _settings(params_file)
    card, promotion = _run(
        lambda: register_and_gate(
            settings, model_dir, params=params.get("train", {}), promote_if_better=promote
        )
    )
    if as_json:
        print_json({"card": card.to_dict(), "promotion": promotion.to_dict() if promotion else None})
        return
    out.print(f"registered [bold]{card.version}[/]: {_metrics_line(card.metrics)}")
    if promotion:
        _print_promotion(promotion)


@models_app.command("prepare-data")
def prepare_data_command(
    out_path: Path = typer.Option(Path("models/pairs.jsonl"), "--out", help="Where to write the pairs."),
    params_file: Path = PARAMS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """DVC stage 'prepare': sample NLI train pairs, add in-domain catalogue pairs and the dev pairs."""
    from freshrank.train.lifecycle import prepare_data

    settings, params = _settings(params_file)
    prepared = _run(lambda: prepare_data(settings, out_path, params.get("prepare", {})))
    if as_json:
        print_json(prepared.__dict__)
    else:
        out.print(
            f"{prepared.path}: {prepared.train_pairs} train + {prepared.catalog_pairs} catalogue "
            f"+ {prepared.dev_pairs} dev pairs"
        )


@models_app.command("export")
def export_command(
    model_dir: Path = typer.Argument(..., help="A trained model directory."),
    out_dir: Path = typer.Option(..., "--out", help="Copy of the model with its ONNX files under onnx/."),
    params_file: Path = PARAMS_OPTION,
    metrics_out: Path = typer.Option(None, "--metrics-out", help="Accuracy change of the export (JSON)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """DVC stage 'export': ONNX Runtime files (dynamic int8 unless params say otherwise), accuracy checked."""
    import shutil

    from freshrank.train.export import export_onnx

    settings, params = _settings(params_file)
    export = params.get("export", {})
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(model_dir, out_dir)
    nli = export.get("nli_path") or settings.nli_path
    result = _run(lambda: export_onnx(out_dir, bool(export.get("quantize", True)), nli, settings))
    if metrics_out:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        metrics_out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if as_json:
        print_json(result)
    else:
        out.print(
            f"{out_dir}: {', '.join(result['files'])}; "
            f"dev accuracy {result['dev_accuracy_torch']:.4f} (torch) "
            f"-> {result['dev_accuracy_onnx']:.4f} (onnx), {result['accuracy_change_points']:+.2f} points"
        )


@models_app.command("ship")
def ship_command(
    model_dir: Path = typer.Argument(..., help="A trained LoRA adapter model (models/candidate)."),
    metrics_file: Path = typer.Option(
        Path("metrics.json"), "--metrics", help="Its gate metrics (the evaluate stage's output)."
    ),
    data_file: Path = typer.Option(
        None, "--data", help="The training pairs (their sha256 goes in the card)."
    ),
    out_dir: Path = typer.Option(
        Path("src/freshrank/classify/champion"),
        "--out",
        help="The package data folder of the shipped champion.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """DVC stage 'ship': make the model the champion that every install gets (package data, <= 4 MiB)."""
    from freshrank.train.ship import ship_model

    result = _run(lambda: ship_model(model_dir, out_dir, metrics_file, data_file))
    if as_json:
        print_json(result)
    else:
        out.print(
            f"shipped [bold]{result['version']}[/] to {escape(result['out'])} "
            f"({result['bytes'] / 2**20:.2f} MiB, nDCG@10 {result['ndcg_at_10']})"
        )


def _print_promotion(result: Any) -> None:
    verdict = "[green]promoted[/]" if result.promoted else "[yellow]not promoted[/]"
    out.print(f"{verdict}: {result.candidate} (champion before: {result.champion_before})")
    for reason in result.reasons:
        out.print(f"  - {escape(reason)}")
    if result.rescored:
        ok = result.rescored.get("ok")
        detail = result.rescored.get("error") or f"{len(result.rescored.get('scored', []))} labels scored"
        out.print(f"  re-scoring current trends: {'ok' if ok else 'failed'} ({escape(str(detail))})")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.add_typer(models_app, name="models")
