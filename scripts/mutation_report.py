"""Summarise a mutmut run (``make mutate``): the score per module and every surviving mutant with its diff.

Reads ``mutmut results --all true`` in the repository root and writes a Markdown report (default
``var/mutation/report.md``); prints the score table. The hand-kept account of the survivors — which are
equivalent and why — is ``docs/mutation.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]


def results() -> list[tuple[str, str]]:
    """``(mutant name, status)`` for every mutant mutmut knows."""
    out = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    rows = []
    for line in out.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            rows.append((name, status.strip()))
    return rows


def module_of(name: str) -> str:
    """``core.shapes.x_explain_pool__mutmut_3`` → ``core.shapes``."""
    parts = name.split(".")
    return ".".join(parts[:2])


def diff_of(name: str) -> str:
    out = subprocess.run([*MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True)
    return "\n".join(
        line
        for line in out.stdout.splitlines()
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "mutation" / "report.md")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without their diffs")
    args = parser.parse_args()
    rows = results()
    per_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in rows:
        per_module[module_of(name)][status] += 1
    lines = [
        "# Mutation run",
        "",
        "| module | mutants | killed | survived | no tests | timeout | other | score |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module in sorted(per_module):
        c = per_module[module]
        total = sum(c.values())
        killed = c["killed"] + c["timeout"] + c["segfault"]
        judged = killed + c["survived"] + c["no tests"]
        other = total - judged
        score = f"{100 * killed / judged:.1f}%" if judged else "–"
        lines.append(
            f"| {module} | {total} | {killed} | {c['survived']} | {c['no tests']} | {c['timeout']} | "
            f"{other} | {score} |"
        )
    survivors = [name for name, status in rows if status in ("survived", "no tests")]
    lines += ["", f"## Survivors ({len(survivors)})", ""]
    for name in survivors:
        lines.append(f"### `{name}`")
        if not args.no_diffs:
            lines += ["", "```diff", diff_of(name), "```"]
        lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[: 4 + len(per_module)]))
    print(f"\nreport: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
