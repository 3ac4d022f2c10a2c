"""The package's shape, checked from its source: no import cycle, no import against the data flow, and no
code outside a kind's own module that asks for a kind by name."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "vaelab"

# The data flow, as layers: a module may import its own layer or an earlier one, never a later one.
LAYERS = [
    (
        "vaelab.errors",
        "vaelab.config",
        "vaelab.device",
        "vaelab.threads",
        "vaelab.noise",
        "vaelab.progress",
        "vaelab.checkpoint",
        "vaelab.rundir",
        "vaelab.extras",
    ),
    ("vaelab.data",),
    ("vaelab.nets", "vaelab.nets_resnet", "vaelab.models"),
    ("vaelab.losses",),
    ("vaelab.training",),
    ("vaelab.kinds",),
    ("vaelab.run",),
    ("vaelab.evaluate", "vaelab.samplers"),
    ("vaelab.latent_walks", "vaelab.plots", "vaelab.figure", "vaelab.figures", "vaelab.study_figures"),
    ("vaelab.report", "vaelab.study_answers"),
    ("vaelab.export", "vaelab.tracking"),
    ("vaelab.pipeline", "vaelab.compare"),
    ("vaelab.cli", "vaelab.__main__", "vaelab.explorer", "vaelab.api"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str) -> set[str]:
    """Every vaelab module `name` imports, at module level or inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> int:
    for rank, group in enumerate(LAYERS):
        if any(name == g or name.startswith(g + ".") for g in group):
            return rank
    raise AssertionError(f"{name} is in no layer of the data flow; add it to LAYERS")


def test_every_module_has_a_layer_and_imports_only_earlier_layers():
    against = [
        (a, b)
        for a, targets in GRAPH.items()
        if a != "vaelab"
        for b in targets
        if b != "vaelab" and layer(b) > layer(a)
    ]
    assert not against, f"imports against the data flow: {against}"


def test_no_import_cycle():
    def visit(node, stack, done):
        if node in stack:
            raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(node) :] + [node])}")
        if node in done:
            return
        for target in GRAPH[node]:
            if target != "vaelab":  # the package's own __init__ imports submodules lazily, on attribute access
                visit(target, stack + [node], done)
        done.add(node)

    done = set()
    for name in GRAPH:
        visit(name, [], done)


def test_the_loop_knows_no_kind_and_no_kind_knows_the_loop():
    for name, targets in GRAPH.items():
        if name.startswith("vaelab.training"):
            assert not any(t.startswith("vaelab.kinds") or t == "vaelab.run" for t in targets), name
        if name.startswith("vaelab.kinds"):
            assert "vaelab.training.loop" not in targets and "vaelab.pipeline" not in targets, name
    assert not any(t.startswith("vaelab.") and t != "vaelab.errors" for t in GRAPH["vaelab.config"])


@pytest.mark.parametrize("kind", ["vae", "gan", "vaegan", "iwae", "vamp", "cvae"])
def test_no_code_outside_the_kinds_asks_for_a_kind_by_name(kind):
    """Consumers ask a kind what it can do (`kind.encoder`, `kind.figures`...), never compare its name."""
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?["']{kind}["']|["']{kind}["']\s*(==|!=)""")
    offenders = [
        f"{name}: {line.strip()}"
        for name, path in MODULES.items()
        if not name.startswith("vaelab.kinds")
        for line in path.read_text().splitlines()
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_subpackages_are_reachable_after_import_vaelab_without_importing_torch_up_front():
    code = (
        "import sys, vaelab; assert 'torch' not in sys.modules; "
        "d = vaelab.data.load('mnist-mini'); print(len(d.train), vaelab.kinds.names(), vaelab.models.VAE.__name__, "
        "vaelab.evaluate.evaluate_run.__name__)"
    )
    src = str(SRC)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "8000" and "'vae'" in done.stdout and "VAE evaluate_run" in done.stdout
