"""The notebooks use the public Python API only: `pipelines` (and `pipelines.<domain>`),
never the `domains` or `shared` packages behind it, plus the standard library and the
libraries a reader has anyway (numpy, pandas, matplotlib, PIL, IPython's display,
gymnasium for an environment, TensorFlow and Keras to call an export or look at a
model). Parses the code cells; runs nothing (well under a second).
"""

from __future__ import annotations

import ast
import sys

import nbformat
import pytest

from tests.notebooks.test_notebooks import all_notebooks

PUBLIC = {"pipelines"}
INTERNAL = {"domains", "shared"}
THIRD_PARTY = {
    "IPython",
    "PIL",
    "gymnasium",
    "keras",
    "matplotlib",
    "numpy",
    "pandas",
    "tensorflow",
}


def imported_modules(source: str) -> list[str]:
    """Every module a cell imports: `import a.b`, `from a.b import c`, and string
    arguments of `importlib.import_module(...)` / `__import__(...)`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in ("import_module", "__import__") and node.args:
                first = node.args[0]
                is_text = isinstance(first, ast.Constant) and isinstance(first.value, str)
                found.append(first.value if is_text else "<computed>")
    return found


def code_cells(name: str) -> list[str]:
    notebook = nbformat.read(all_notebooks()[name], as_version=4)
    # IPython magics and shell escapes are not Python; none of them imports anything.
    return [
        "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]


def test_the_parser_sees_every_kind_of_import():
    source = (
        "import os, shared.zoo\nfrom domains.nlp.data import load\nfrom . import x\n"
        "importlib.import_module('domains.vision')\n__import__(name)\n"
    )
    assert imported_modules(source) == [
        "os",
        "shared.zoo",
        "domains.nlp.data",
        ".",
        "domains.vision",
        "<computed>",
    ]


@pytest.mark.parametrize("name", list(all_notebooks()))
def test_notebook_imports_only_the_public_api(name):
    allowed = PUBLIC | THIRD_PARTY | set(sys.stdlib_module_names)
    bad = {}
    for number, source in enumerate(code_cells(name), 1):
        for module in imported_modules(source):
            top = module.split(".")[0]
            if top in INTERNAL or top not in allowed:
                bad.setdefault(f"code cell {number}", []).append(module)
    assert not bad, f"notebooks/{name}.ipynb imports more than the public API: {bad}"
