"""Every writer goes through the one atomic, formula-safe writer (regen/_write.py), and every
HTML template through its one autoescaping environment: this test fails when new code
writes a file or renders a template some other way.

The source of regen/ and analyses/ is read as Python syntax trees, so a call is found
whatever the line looks like; only regen/_write.py may call the writing primitives.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2
import pytest

from regen._write import html_environment

from .conftest import ROOT

#: Methods and functions that write files, or make file writers.
WRITING_METHODS = {"to_csv", "to_parquet", "to_excel", "to_json", "to_html", "to_feather",
                   "to_stata", "to_pickle", "to_hdf", "to_sql", "to_xml", "write_text",
                   "write_bytes", "savefig", "dump", "ExcelWriter", "Workbook", "replace",
                   "rename", "copyfile", "copy", "copy2", "copytree", "move", "fdopen",
                   "NamedTemporaryFile", "mkstemp"}
TEMPLATE_MAKERS = {"Environment", "Template", "select_autoescape", "Markup", "from_string"}
ONE_WRITER = ROOT / "regen" / "_write.py"


def _sources() -> list[Path]:
    return sorted([*(ROOT / "regen").rglob("*.py"), *(ROOT / "analyses").rglob("*.py")])


def _called_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _receiver(node: ast.Call) -> str | None:
    """``x`` of ``x.f(...)``, ``x.y`` as ``y``, ``X(...).f()`` as ``X``."""
    if not isinstance(node.func, ast.Attribute):
        return None
    value = node.func.value
    if isinstance(value, ast.Call):
        return _called_name(value)
    if isinstance(value, ast.Attribute):
        return value.attr
    return value.id if isinstance(value, ast.Name) else None


def _mode(node: ast.Call) -> ast.expr | None:
    """The mode argument of ``open(path, mode)``, ``path.open(mode)`` or ``os.fdopen(fd, mode)``."""
    for keyword in node.keywords:
        if keyword.arg == "mode":
            return keyword.value
    position = 0 if isinstance(node.func, ast.Attribute) and _receiver(node) not in ("os",) \
        else 1
    return node.args[position] if len(node.args) > position else None


def _writes_mode(mode: ast.expr | None) -> bool:
    """A literal mode that writes: ``"w"``, ``"ab"``, ``"x"``, ``"r+"``. (An archive's
    ``open(member)`` has no mode; modes worked out at run time are not used outside the
    writer.)"""
    return (isinstance(mode, ast.Constant) and isinstance(mode.value, str)
            and bool(set(mode.value) & set("wax+")))


def _writes_flags(node: ast.Call) -> bool:
    """``os.open(path, os.O_WRONLY | os.O_CREAT ...)``."""
    return any(isinstance(n, ast.Attribute) and n.attr in ("O_WRONLY", "O_RDWR", "O_CREAT",
                                                            "O_APPEND", "O_TRUNC")
               for argument in node.args[1:] for n in ast.walk(argument))


def _from_the_writer(tree: ast.Module) -> set[str]:
    """Names a module imports from regen._write (its functions may be called bare)."""
    return {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "regen._write"
            for alias in node.names}


WRITER_METHODS = {"write_text", "write_bytes", "write_table", "write_json", "write_workbook",
                  "save_figure", "open"}


def _offences(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    ours = _from_the_writer(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, receiver = _called_name(node), _receiver(node)
        where = f"{path.relative_to(root)}:{node.lineno}"
        if receiver in ("outputs", "Outputs") and name in WRITER_METHODS:
            continue  # the one writer's own methods
        if isinstance(node.func, ast.Name) and name in ours:
            continue  # the one writer's functions
        if name == "open" or name == "fdopen":
            if receiver == "os" and name == "open":
                if _writes_flags(node):
                    found.append(f"{where}: os.open for writing")
            elif _writes_mode(_mode(node)):
                found.append(f"{where}: {name} for writing")
        elif name in WRITING_METHODS - {"fdopen"}:
            # str.replace and dict.copy are not writes: only those of os, shutil and json.
            if name in ("replace", "rename", "copy", "dump") and receiver not in (
                    "os", "shutil", "json"):
                continue
            found.append(f"{where}: {name}()")
        elif name in TEMPLATE_MAKERS:
            found.append(f"{where}: {name}() (templates go through html_environment)")
    return found


def test_only_the_one_writer_writes_files():
    offences = [hit for path in _sources() if path != ONE_WRITER for hit in _offences(path)]
    assert offences == [], "write through regen._write (Outputs, write_table, ...):\n" + \
        "\n".join(offences)


def test_the_check_finds_a_writer_that_bypasses_it(tmp_path):
    """The scan itself can fail: each way of writing around the writer is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("\n".join([
        "import json, os, shutil", "import jinja2",
        "frame.to_csv('x.csv')", "Path('a').write_text('x')", "figure.savefig('f.png')",
        "open('x', 'w')", "p.open(mode='ab')", "json.dump(d, handle)", "os.replace(a, b)",
        "shutil.copy(a, b)", "jinja2.Environment(loader=None)", "jinja2.Template('{{ x }}')",
        "text.replace('a', 'b')", "open('x')", "open('x', 'rb')", "os.open(p, os.O_RDONLY)",
        "os.fdopen(fd, 'rb')", "os.open(p, os.O_WRONLY | os.O_CREAT)", "os.fdopen(fd, 'w')",
        "outputs.write_text(p, 'x')", "Outputs().write_table(frame, p)", "write_json(p, {})",
    ]))
    hits = _offences(bad, root=tmp_path)
    assert len(hits) == 12, hits


def test_no_template_marks_data_safe():
    for template in (ROOT / "regen").rglob("*.j2"):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "autoescape false" not in text.lower(), template.name


@pytest.mark.parametrize("template", sorted(p.relative_to(ROOT).as_posix()
                                             for p in (ROOT / "regen").rglob("*.j2")))
def test_every_template_autoescapes_whatever_its_name(template):
    path = ROOT / template            # regen/report/templates/x.j2: the package regen.report
    environment = html_environment(".".join(path.parent.parent.relative_to(ROOT).parts),
                                   path.parent.name)
    assert environment.autoescape is True
    assert isinstance(environment.undefined(), jinja2.StrictUndefined)
    assert environment.is_async is False
    assert path.name in environment.list_templates()
    rendered = environment.from_string("{{ value }}").render(value="<script>x</script>")
    assert rendered == "&lt;script&gt;x&lt;/script&gt;"
