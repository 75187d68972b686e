"""Statistics as the terminal shows them: one table of variants, one of pairwise comparisons."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..display.terminal import fmt
from .stats import FEW_SEEDS


def interval(ci) -> str:
    return "—" if not ci else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def variants_table(result: dict, metric: str, labels: dict[str, str]) -> Table:
    better = "lower" if result["lower_is_better"] else "higher"
    table = Table(
        title=f"{metric} over seeds ({better} is better): mean, std, median, "
        f"{result['confidence']:.0%} BCa interval of the mean"
    )
    columns = ["variant", "seeds", "mean", "std", "median", "95% CI"]
    if result["solved"]:
        by_task = " as the task declares" if result.get("solved_from") == "task" else ""
        columns.append(f"solved ({result['solved']}{by_task})")
    for column in columns:
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in result["variants"]:
        cells = [
            "\n".join(filter(None, [row["variant"], labels.get(row["variant"], "")])),
            str(row["n"]),
            fmt(row["mean"]) if row["mean"] is not None else "—",
            fmt(row["std"]) if row["std"] is not None else "—",
            fmt(row["median"]) if row["median"] is not None else "—",
            interval(row["ci"]),
        ]
        if result["solved"]:
            rate = row["solve_rate"]
            cells.append(
                "—"
                if rate["rate"] is None
                else f"{rate['solved']}/{rate['n']} {interval(rate['ci'])}"
            )
        table.add_row(*cells)
    return table


def pairs_table(result: dict) -> Table | None:
    if not result["pairs"]:
        return None
    table = Table(
        title="pairwise: t-test of the difference of means (Holm-corrected across the table), "
        "P(A better than B) with its BCa interval"
    )
    for column in ("A", "B", "test", "mean A - B", "p", "p (Holm)", "P(A better)", "95% CI"):
        table.add_column(column, justify="left" if column in ("A", "B", "test") else "right")
    for pair in result["pairs"]:
        table.add_row(
            pair["a"],
            pair["b"],
            pair["test"],
            fmt(pair["difference"]),
            fmt(pair["p"]) if pair["p"] is not None else "—",
            fmt(pair["p_holm"]) if pair["p_holm"] is not None else "—",
            fmt(pair["superiority"]),
            interval(pair["superiority_ci"]),
        )
    return table


def print_stats(console: Console, result: dict, metric: str, labels: dict[str, str]) -> None:
    console.print(variants_table(result, metric, labels))
    pairs = pairs_table(result)
    if pairs is not None:
        console.print(pairs)
    if result["few_seeds"]:
        console.print(
            f"fewer than {FEW_SEEDS} seeds for {', '.join(result['few_seeds'])}: too few to "
            f"tell variants apart with confidence (intervals are wide, tests fragile)",
            highlight=False,
        )
