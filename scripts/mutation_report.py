"""Summarise a mutmut run (``make mutate``): the score per module and every surviving mutant with its diff.

Reads ``mutmut results --all true`` in the repository root and writes a Markdown report (default
``var/mutation/report.md``); prints the score table, per module and for the two aims of issue 14:
``core/`` (the four core modules together) and the request validation (``app.schemas`` + ``app.body_limit``).

Score = killed / (killed + survived + no tests + timeout): a timeout is not counted as a kill. The
mutants argued equivalent in ``docs/mutation.md`` are listed by name in ``docs/mutation_equivalents.txt``
(``<mutant name> <class>`` per line); the second score leaves those out of the denominator.

``--rerun FILE`` (repeatable) takes the saved output of ``mutmut results --all true`` of a later run of
some mutants (``mutmut run <names>``) and lets its verdicts replace the full run's for those mutants
("not checked" lines are ignored), so that the table says what the full run plus its re-runs found.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]
EQUIVALENTS = ROOT / "docs" / "mutation_equivalents.txt"


def parse_results(text: str) -> dict[str, str]:
    """``{mutant name: status}`` from the text ``mutmut results --all true`` prints."""
    rows = {}
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            rows[name] = status.strip()
    return rows


def results() -> dict[str, str]:
    """``{mutant name: status}`` for every mutant mutmut knows."""
    out = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return parse_results(out.stdout)


def equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """``{mutant name: class}`` of the mutants argued equivalent (blank lines and ``#`` comments skipped)."""
    if not path.exists():
        return {}
    listed = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, cls = line.partition(" ")
            listed[name] = cls.strip()
    return listed


def module_of(name: str) -> str:
    """``core.shapes.x_explain_pool__mutmut_3`` → ``core.shapes``."""
    return ".".join(name.split(".")[:2])


AIMS = (("core/ (all)", "core."), ("request validation (app/)", "app."))
"""The aggregate rows: (label, module prefix)."""


def diff_of(name: str) -> str:
    out = subprocess.run([*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True)
    return "\n".join(
        line
        for line in out.stdout.splitlines()
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    )


def score_table(rows: dict[str, str], equivalent: dict[str, str]) -> list[str]:
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in rows.items():
        groups = [module_of(name)] + [f"**{label}**" for label, prefix in AIMS if name.startswith(prefix)]
        for group in groups:
            per_module[group][status] += 1
            if name in equivalent and status in ("survived", "no tests", "timeout"):
                per_module[group]["equivalent"] += 1
    lines = [
        "| module | mutants | killed | survived | no tests | timeout | not checked | equivalent "
        "| score (all) | score (non-equivalent) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in sorted(per_module, key=lambda m: (m.startswith("**"), m)):
        c = per_module[module]
        total = sum(v for k, v in c.items() if k != "equivalent")
        killed = c["killed"] + c["segfault"]
        judged = killed + c["survived"] + c["no tests"] + c["timeout"]
        score = f"{100 * killed / judged:.1f}%" if judged else "–"
        rest = judged - c["equivalent"]
        score_ne = f"{100 * killed / rest:.1f}%" if rest else "–"
        lines.append(
            f"| {module} | {total} | {killed} | {c['survived']} | {c['no tests']} | {c['timeout']} | "
            f"{c['not checked']} | {c['equivalent']} | {score} | {score_ne} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "mutation" / "report.md")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without their diffs")
    parser.add_argument("--seconds", type=int, help="wall-clock seconds of the run, written into the report")
    parser.add_argument(
        "--rerun",
        type=Path,
        action="append",
        default=[],
        help="saved `mutmut results --all true` of a re-run",
    )
    args = parser.parse_args()
    rows = results()
    for path in args.rerun:
        for name, status in parse_results(path.read_text(encoding="utf-8")).items():
            if status != "not checked" and name in rows:
                rows[name] = status
    equivalent = equivalents()
    table = score_table(rows, equivalent)
    lines = ["# Mutation run", "", *table]
    if args.seconds is not None:
        lines += ["", f"Wall-clock time of `mutmut run`: {args.seconds // 60} min {args.seconds % 60} s."]
    if args.rerun:
        lines += ["", "Verdicts of re-runs applied: " + ", ".join(str(p) for p in args.rerun)]
    survivors = [name for name, status in rows.items() if status in ("survived", "no tests", "timeout")]
    lines += ["", f"## Survivors ({len(survivors)}; equivalent ones marked with their class)", ""]
    for name in survivors:
        mark = f" — equivalent: {equivalent[name]}" if name in equivalent else ""
        lines.append(f"### `{name}` ({rows[name]}){mark}")
        if not args.no_diffs:
            lines += ["", "```diff", diff_of(name), "```"]
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(table))
    if args.seconds is not None:
        print(f"\nmutmut run took {args.seconds // 60} min {args.seconds % 60} s")
    print(f"\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
