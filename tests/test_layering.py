"""Imports inside nnlearn run one way: no cycles, and the maths imports nothing else.

Every ``import`` statement counts, those inside functions too: a lazy import hides a
cycle from Python, not from a reader.
"""

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "nnlearn"


def module_name(path):
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def imports_of(name, path):
    """The nnlearn modules ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            # `from package import submodule` imports the submodule
            found.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES)
            found.add(target)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles(graph):
    """Every strongly connected group of two or more modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_import_graph_has_no_cycle():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", sorted(name for name in MODULES if name.startswith("nnlearn.core")))
def test_the_core_imports_nothing_of_the_rest(name):
    outside = {module for module in GRAPH[name] if not module.startswith("nnlearn.core")}
    assert not outside, f"{name} imports {sorted(outside)}"


def test_the_graph_sees_the_imports_it_should():
    # a check that the parser above can fail: known edges are found
    assert "nnlearn.core" in GRAPH["nnlearn.training._train"]
    assert "nnlearn.core.activations" in GRAPH["nnlearn.core.network"]
    assert "nnlearn.estimator" in GRAPH["nnlearn"]  # a lazy import, inside a function


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("nnlearn.model._model", "nnlearn.model._octave"),
        ("nnlearn.reporting._curves", "nnlearn.reporting._plots"),
        ("nnlearn.training._train", "nnlearn.cli"),
        ("nnlearn.training._train", "nnlearn.estimator"),
    ],
)
def test_lower_layers_do_not_import_upper_ones(lower, upper):
    assert upper not in GRAPH[lower]


#: The packages from the bottom up: each may import those before it, never one after it.
#: ``nnlearn`` itself is the public face over the library; the surfaces (web, cli) sit on it.
PACKAGE_ORDER = (
    "errors",
    "_version",
    "core",
    "optim",
    "persist",
    "datasets",
    "compute",
    "model",
    "training",
    "estimator",
    "reporting",
    "nnlearn",
    "web",
    "cli",
    "__main__",
)


def package_of(name):
    """The top-level package (or module) of nnlearn that ``name`` belongs to."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "nnlearn"


def test_every_package_has_its_place_in_the_order():
    assert {package_of(name) for name in MODULES} == set(PACKAGE_ORDER)


def test_packages_import_only_the_packages_below_them():
    upward = sorted(
        (name, target)
        for name, targets in GRAPH.items()
        for target in targets
        if PACKAGE_ORDER.index(package_of(target)) > PACKAGE_ORDER.index(package_of(name))
    )
    assert not upward, f"imports that run upward: {upward}"


def test_the_package_order_test_can_fail():
    rank = PACKAGE_ORDER.index
    assert rank(package_of("nnlearn.core.kernels")) < rank(package_of("nnlearn.training._train"))
    assert package_of("nnlearn") == "nnlearn" and package_of("nnlearn.cli.train") == "cli"


def test_the_architecture_document_names_every_module():
    document = (SOURCE.parents[1] / "docs" / "architecture.md").read_text()
    missing = sorted(
        name
        for name, path in MODULES.items()
        if path.name not in ("__init__.py", "__main__.py")
        and f"{path.stem}.py" not in document
        and not (name.startswith("nnlearn.cli.") and f"`{path.stem}`" in document)  # a verb, as cli/<verb>.py
    )
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_the_architecture_document_gives_the_package_order_and_cites_only_the_repository():
    document = (SOURCE.parents[1] / "docs" / "architecture.md").read_text()
    block = document[document.index("## The packages, from the bottom up") :]
    block = block[block.index("```") + 3 :]
    block = block[: block.index("```")]
    named = [line.split()[0].rstrip("/,") for line in block.strip().splitlines()]
    listed = [name.removesuffix(".py").replace("__init__", "nnlearn") for name in named]
    order = [name for name in PACKAGE_ORDER if name != "__main__"]
    assert [name for name in listed if name in order] == [name for name in order if name in listed]
    assert set(order) - {"_version"} <= set(listed)
    assert "DESIGN.md" not in document and "shared/" not in document
