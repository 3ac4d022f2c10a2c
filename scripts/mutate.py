"""Mutation testing of vaelab's core with mutmut, and its report (docs/mutation.md).

    pip install -e ".[dev,mutate]"
    python scripts/mutate.py                       # every module of [tool.mutmut] only_mutate
    python scripts/mutate.py losses checkpoint     # some modules (by the name of their file)
    python scripts/mutate.py --label before ...    # record the counts under another heading
    python scripts/mutate.py --survivors losses    # run again only the mutants that survived last time
    python scripts/mutate.py --report              # rewrite docs/mutation.md from the last results, run nothing
    python scripts/mutate.py --jobs 2 ...          # two mutants at once: all modules in 45 min on an idle 2-core machine

mutmut copies src/ to mutants/, rewrites every function of the modules listed in pyproject.toml's
[tool.mutmut] so that each mutant can be switched on alone, runs the test selection listed there once to
learn which tests call which function, then runs each mutant against those tests only (one worker: the
machine has two cores). A mutant is killed when a test fails. Survivors are either killed by a test or
listed, with the reason they are equivalent (no test can tell them from the original), in
scripts/mutation_equivalent.toml; the report counts those apart.

Not part of CI: it takes long. The counts of each labelled run are kept in docs/mutation.json, so the
report shows the "before" and "after" columns side by side.

Two cautions. mutmut's time limit is partly wall-clock: a run whose processes are paused (SIGSTOP) reports
false timeouts, and the report counts a timeout as detected. And mutmut resets the results of the mutants whose
tests changed, so `--report` after editing tests recounts them as "not checked": docs/mutation.json keeps the
counts each run recorded.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
REPORT, COUNTS, EQUIVALENT = (
    ROOT / "docs/mutation.md",
    ROOT / "docs/mutation.json",
    ROOT / "scripts/mutation_equivalent.toml",
)
TARGET = 0.85  # the share of non-equivalent mutants each module's tests must kill

# mutmut's exit codes per mutant (mutmut/stats.py), grouped as the report counts them
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    5: "no tests",
    33: "no tests",
    None: "not checked",
}


def config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def module_name(path: str) -> str:
    """src/vaelab/training/loop.py -> vaelab.training.loop"""
    return path.removeprefix("src/").removesuffix(".py").replace("/", ".")


def pick(names: list[str]) -> list[str]:
    """The modules to run: all of only_mutate, or those whose dotted name ends with each given name."""
    modules = [module_name(p) for p in config()["only_mutate"]]
    if not names:
        return modules
    picked = []
    for name in names:
        found = [m for m in modules if m == name or m.endswith("." + name.replace("/", "."))]
        if not found:
            sys.exit(f"mutate: no module {name!r} in [tool.mutmut] only_mutate ({', '.join(modules)})")
        picked += [m for m in found if m not in picked]
    return picked


def run_mutmut(names: list[str], jobs: int = 1) -> float:
    """Run mutmut over the mutants `names` (globs) with `jobs` workers at the lowest priority; returns the seconds
    it took."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": ""}  # the copy under mutants/ must be what the tests import
    command = ["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def results() -> dict[str, dict[str, int | None]]:
    """{module: {mutant name: exit code}} from the .meta files mutmut leaves next to each mutated module."""
    found = {}
    for path in config()["only_mutate"]:
        meta = ROOT / "mutants" / (path + ".meta")
        if meta.exists():
            found[module_name(path)] = json.loads(meta.read_text())["exit_code_by_key"]
    return found


def equivalent() -> dict[str, str]:
    """{mutant name: why no test can kill it}"""
    if not EQUIVALENT.exists():
        return {}
    return {name: reason for table in tomllib.loads(EQUIVALENT.read_text()).values() for name, reason in table.items()}


def count(codes: dict[str, int | None], known: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(["mutants", "killed", "survived", "timeout", "no tests", "not checked", "equivalent"], 0)
    for name, code in codes.items():
        counts["mutants"] += 1
        status = STATUS.get(code, "survived")  # a segfault or an odd exit code is not a kill
        if status in ("survived", "no tests") and name in known:
            status = "equivalent"
        counts[status] += 1
    return counts


def score(c: dict[str, int]) -> float | None:
    judged = c["mutants"] - c["equivalent"] - c["not checked"]
    return (c["killed"] + c["timeout"]) / judged if judged else None


def diffs(path: str) -> dict[str, str]:
    """{mutant name: its changed lines} of one module, read from mutmut's copy (where every mutant is a function
    next to the original, `x_f__mutmut_orig`; a method's is `xǁClassǁf__mutmut_orig`)."""
    source = (ROOT / "mutants" / path).read_text()
    functions = {
        node.name: ast.get_source_segment(source, node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and "__mutmut_" in node.name
    }
    found = {}
    for name, code in functions.items():
        base, _, number = name.rpartition("__mutmut_")
        original = functions.get(base + "__mutmut_orig")
        if number == "orig" or original is None:
            continue
        code = code.replace(name, base + "__mutmut_orig", 1)  # the name aside, what differs is the mutation
        changed = difflib.unified_diff(original.splitlines(), code.splitlines(), lineterm="", n=0)
        lines = [line for line in changed if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        found[f"{module_name(path)}.{name}"] = "\n".join(lines)
    return found


def table(counts: dict[str, dict[str, int]]) -> list[str]:
    rows = [
        "| module | mutants | killed | survived | timeout | no tests | not checked | equivalent | killed share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for module, c in counts.items():
        s = score(c)
        mark = "" if s is None or s >= TARGET else " (below target)"
        cells = [c[k] for k in ("mutants", "killed", "survived", "timeout", "no tests", "not checked", "equivalent")]
        rows.append(f"| {module} | " + " | ".join(map(str, cells)) + f" | {'-' if s is None else f'{s:.1%}'}{mark} |")
    return rows


def write_report(saved: dict) -> None:
    known = equivalent()
    codes = results()
    lines = [
        "# Mutation testing",
        "",
        "Generated by `python scripts/mutate.py` (mutmut; see the script's docstring). Not run in CI: all the modules",
        "take about 45 minutes on two cores with `--jobs 2`. A module's *killed share* is (killed + timeout) /",
        f"(mutants - equivalent - not checked); the target is {TARGET:.0%} in each module. Tests run per mutant: those of",
        "`[tool.mutmut] pytest_add_cli_args_test_selection` in pyproject.toml that call the mutated function (every",
        "test but the end-to-end, slow and thorough ones, chosen by marker; code that runs only with several processes",
        "is checked in one process against a mirrored torch.distributed, `tests/helpers/world.py`).",
        "",
    ]
    for label, run in saved.items():
        lines += [f"## {label}", ""] + [f"- {line}" for line in run["note"].strip().splitlines()] + [""]
        lines += table(run["counts"]) + [""]
    lines += [
        "## Survivors",
        "",
        "Every mutant no test kills, in the last run of its module: equivalent ones with the reason no test can",
        "tell them from the original (scripts/mutation_equivalent.toml), the others as they are.",
        "",
    ]
    paths = {module_name(p): p for p in config()["only_mutate"]}
    for module, by_name in codes.items():
        left = [n for n, code in sorted(by_name.items()) if STATUS.get(code, "survived") == "survived"]
        if not left:
            continue
        changed = diffs(paths[module])
        lines += [f"### {module}", ""]
        for name in left:
            reason = known.get(name, "NOT EXPLAINED: a test should kill it")
            lines += [f"- `{name}`: {reason}", "", "  ```diff"]
            lines += ["  " + line for line in changed.get(name, "").splitlines()] + ["  ```", ""]
    REPORT.write_text("\n".join(lines).rstrip() + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mutation testing of vaelab's core (mutmut); writes docs/mutation.md")
    parser.add_argument("modules", nargs="*", help="module names (losses, checkpoint, kinds.vae...); default: all")
    parser.add_argument("--label", default="after", help="the heading these counts are recorded under")
    parser.add_argument("--survivors", action="store_true", help="run only the mutants that survived the last run")
    parser.add_argument("--report", action="store_true", help="only recount and rewrite the report, run nothing")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1; each test uses 2 threads)")
    args = parser.parse_args(argv)
    saved = json.loads(COUNTS.read_text()) if COUNTS.exists() else {}
    run = saved.setdefault(args.label, {"note": "", "counts": {}})
    modules = pick(args.modules) if args.modules or not args.report else list(run["counts"])
    if not args.report:
        names = [f"{m}.*" for m in modules]
        if args.survivors:
            codes = results()
            names = [
                n for m in modules for n, code in codes.get(m, {}).items() if STATUS.get(code, "survived") == "survived"
            ]
        if names:
            seconds = run_mutmut(names, args.jobs)
            when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            what = "survivors of the last run" if args.survivors else "mutants"
            short = ", ".join(m.removeprefix("vaelab.") for m in modules)
            run["note"] += (
                f"\n{when}: {len(names) if args.survivors else sum(len(results().get(m, {})) for m in modules)} "
                f"{what} of {short} in {seconds / 60:.0f} min."
            )
    codes, known = results(), equivalent()
    for module in modules:
        run["counts"][module] = count(codes.get(module, {}), known)
    COUNTS.write_text(json.dumps(saved, indent=2) + "\n")
    write_report(saved)


if __name__ == "__main__":
    main()
