"""The package's structure holds (docs/architecture.md): the layer contract in
``.importlinter`` is kept (a lower layer never imports a higher one, the model families
never import each other), no import cycle anywhere in ``regen/``, and no module imports
an underscore name from another module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "regen"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_imports() -> list[str]:
    """``file:line name`` for every ``from regen... import _name`` between modules."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                base = _module_name(path).split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                module = ".".join(base + ([module] if module else []))
            if not (module == "regen" or module.startswith("regen.")):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                 f"{module}.{alias.name}")
    return found


def test_no_module_imports_an_underscore_name_from_another():
    assert private_imports() == []


def test_the_check_finds_a_private_import(tmp_path, monkeypatch):
    """The checker itself: a crafted module that imports a private name is reported."""
    package = tmp_path / "regen"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def _hidden():\n    pass\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from regen.a import _hidden\nfrom ..a import _hidden\n"
                                          "from regen import __version__\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert private_imports() == ["regen/sub/b.py:1 regen.a._hidden",
                                 "regen/sub/b.py:2 regen.a._hidden"]


def _import_graph():
    grimp = pytest.importorskip("grimp", reason="import-linter (the dev extras) is not installed")
    return grimp.build_graph("regen", include_external_packages=False)


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (each an import cycle)."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(imports.get(module, ())):
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(imports):
        if module not in order:
            visit(module)
    return found


def test_no_import_cycle_in_the_package():
    graph = _import_graph()
    imports = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert cycles(imports) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_layer_contract_is_kept(capsys):
    pytest.importorskip("importlinter", reason="import-linter (the dev extras) is not installed")
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(PACKAGE.parent / ".importlinter"), no_cache=True,
                        no_logo=True)
    assert code == 0, capsys.readouterr().out


#: Functions longer than 80 code lines (docstrings aside) that remain, and why; a new one, or
#: one of these growing, fails the test below.
LONG_FUNCTIONS: dict[str, int] = {}      # none today


def _code_lines(node) -> int:
    """Lines of a def or class, less its docstring and its methods' docstrings."""
    def docstring(body) -> int:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                and isinstance(first.value.value, str):
            return first.end_lineno - first.lineno + 1
        return 0

    lines = node.end_lineno - node.lineno + 1 - docstring(node.body)
    if isinstance(node, ast.ClassDef):
        lines -= sum(docstring(item.body) for item in node.body
                     if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef))
    return lines


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    """Classes over 250 and functions over 80 code lines, as ``file:name``."""
    classes, functions = {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE.parent).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and _code_lines(node) > 250:
                classes[f"{where}:{node.name}"] = _code_lines(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and _code_lines(node) > 80:
                functions[f"{where}:{node.name}"] = _code_lines(node)
    return classes, functions


def test_no_class_over_250_lines_and_no_function_over_80():
    classes, functions = sizes()
    assert classes == {}
    unknown = {name: n for name, n in functions.items()
               if n > LONG_FUNCTIONS.get(name, 80)}
    assert unknown == {}, "split these functions, or say in LONG_FUNCTIONS why they are long"


def test_no_module_over_800_lines():
    long = {path.relative_to(PACKAGE.parent).as_posix(): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 800}
    assert long == {}, "split these modules by what they do (as io/ and simulate/ are)"


def _loaded_after(code: str) -> set[str]:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout
    return set(out.split())


def test_importing_regen_loads_no_model_or_figure_library():
    loaded = _loaded_after("import regen")
    assert not loaded & {"matplotlib", "statsmodels", "jinja2", "scipy", "pandas", "formulaic"}


def test_the_command_lines_help_loads_no_data_library():
    loaded = _loaded_after("from regen.cli import main\n"
                           "try:\n    main(['fit', 'recovery', '--help'])\n"
                           "except SystemExit:\n    pass")
    assert not loaded & {"numpy", "pandas", "scipy", "matplotlib", "statsmodels", "formulaic"}


def test_a_fresh_regen_loads_every_kind_of_model_file():
    loaded = _loaded_after("import regen, pathlib, json\n"
                           "regen.load_model(pathlib.Path('tests/fixtures/model_files') / "
                           "sorted(p.name for p in pathlib.Path('tests/fixtures/model_files')"
                           ".glob('*.json'))[0])")
    assert "regen.survival" in loaded


def test_every_submodule_is_reachable_from_a_plain_import_regen():
    loaded = _loaded_after("import regen\nassert regen.tables.KNOWN_NERVES and "
                           "regen.survival.npmle.turnbull is regen.turnbull\n"
                           "try:\n    regen.no_such_thing\nexcept AttributeError:\n    pass\n"
                           "else:\n    raise SystemExit('no AttributeError')")
    assert "regen.survival.npmle" in loaded


def test_every_public_name_of_regen_has_a_home():
    import regen

    assert set(regen.__all__) == {"__version__", *regen._SUBMODULES, *regen._HOMES}
