"""Every call in the project's source that writes, renames or deletes a file, found by reading the code (AST).

A call counts as going through the write gate when it writes the temporary path that
``util.write_gate.writing`` yields (``with writing(path) as tmp: torch.save(obj, tmp)``),
or a file opened on it. ``tests/test_write_gate.py`` fails on any other call that its
allowlist does not name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"tests", "data", "outputs", "saves", "log", "build", "dist", "node_modules"}
GATE = "util/write_gate.py"  # the gate itself
OPEN_WRITE_CHARS = set("wax+")
SHUTIL_WRITERS = {"move", "copy", "copy2", "copyfile", "copytree", "rmtree"}
OS_WRITERS = {"replace", "rename", "renames", "remove", "unlink", "rmdir", "removedirs"}
PATH_WRITERS = {"write_text", "write_bytes", "unlink", "rename", "rmdir", "savefig", "extractall", "extract"}


@dataclass(frozen=True)
class WriteCall:
    file: str  # relative to the repository root
    function: str  # qualified name of the enclosing function ("<module>" at the top level)
    kind: str  # e.g. "open-w", "torch.save", "Image.save", "shutil.rmtree", "Path.unlink"
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return self.file, self.function, self.kind


def project_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in SKIPPED_DIRS for p in parts[:-1]) or path.relative_to(ROOT).as_posix() == GATE:
            continue
        yield path


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "?"


def _literal_mode(call: ast.Call, position: int) -> str | None:
    """The ``mode`` of an open-like call: the literal, "?" when not a literal, None when absent (read)."""
    node = call.args[position] if len(call.args) > position else next((k.value for k in call.keywords if k.arg == "mode"), None)
    if node is None:
        return None
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"


def _writes(mode: str | None) -> bool:
    return mode is not None and (mode == "?" or bool(OPEN_WRITE_CHARS & set(mode)))


def classify(call: ast.Call) -> tuple[str, ast.AST | None] | None:
    """(kind, the expression naming the file written) of a writing call, or None."""
    func = call.func
    name = _dotted(func)
    first = call.args[0] if call.args else None
    if isinstance(func, ast.Name) and func.id == "open" or name in ("io.open", "os.fdopen"):
        mode = _literal_mode(call, 1)
        return (f"open-{mode}", first) if _writes(mode) else None
    if isinstance(func, ast.Attribute):
        attr = func.attr
        owner = _dotted(func.value)
        if owner in ("write_gate", "util.write_gate"):
            return None  # the gate's own functions
        if attr == "open" and owner == "os":
            return None  # os.open(path, flags): flags, not a mode; the writes follow through os.write or fdopen
        if attr == "open" and owner not in ("Image", "zipfile", "tarfile", "zf", "tf") and _writes(_literal_mode(call, 0)):
            return f"Path.open-{_literal_mode(call, 0)}", func.value
        if name == "torch.save":
            return "torch.save", call.args[1] if len(call.args) > 1 else None
        if name in ("cv2.imwrite", "cv2.VideoWriter"):
            return name, first
        if name == "json.dump":
            return name, call.args[1] if len(call.args) > 1 else None
        if owner == "shutil" and attr in SHUTIL_WRITERS:
            return f"shutil.{attr}", call.args[1] if attr != "rmtree" and len(call.args) > 1 else first
        if owner == "os" and attr in OS_WRITERS:
            return f"os.{attr}", call.args[1] if attr in ("replace", "rename", "renames") and len(call.args) > 1 else first
        if name.endswith("ZipFile") and _writes(_literal_mode(call, 1)) and _literal_mode(call, 1) != "r":
            return f"zipfile-{_literal_mode(call, 1)}", first
        if attr == "save" and owner != "torch":
            return "save", first  # PIL Image.save, and any other object's save
        if attr == "replace" and len(call.args) == 1 and not call.keywords:
            return "Path.replace", func.value  # str.replace takes two arguments
        if attr in PATH_WRITERS:
            target = first if attr in ("savefig", "extractall", "extract") else func.value
            return f"Path.{attr}" if attr not in ("savefig", "extractall", "extract") else attr, target
    if isinstance(func, ast.Name) and func.id == "ZipFile" and _writes(_literal_mode(call, 1)) and _literal_mode(call, 1) != "r":
        return f"zipfile-{_literal_mode(call, 1)}", first
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, file: str):
        self.file = file
        self.stack: list[str] = []
        self.gated: list[set[str]] = [set()]  # names bound to the gate's temporary path, per function
        self.found: list[WriteCall] = []

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.gated.append(set())
        self.generic_visit(node)
        self.gated.pop()
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _function

    def _is_gated(self, node: ast.AST | None) -> bool:
        return node is not None and any(isinstance(n, ast.Name) and n.id in self.gated[-1] for n in ast.walk(node))

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:  # in order: `with writing(p) as tmp, open(tmp, "xb") as f` gates both
            expr, var = item.context_expr, item.optional_vars
            if isinstance(expr, ast.Call) and isinstance(var, ast.Name):
                gate = _dotted(expr.func).split(".")[-1] == "writing"
                found = classify(expr)
                if gate or (found is not None and self._is_gated(found[1])):
                    self.gated[-1].add(var.id)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        found = classify(node)
        if found is not None and not self._is_gated(found[1]):
            self.found.append(WriteCall(self.file, ".".join(self.stack) or "<module>", found[0], node.lineno))
        self.generic_visit(node)


def write_calls(files: list[Path] | None = None) -> list[WriteCall]:
    """Every writing call outside the gate in the project's source (or in ``files``)."""
    found: list[WriteCall] = []
    for path in files if files is not None else project_files():
        scanner = _Scanner(path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name)
        scanner.visit(ast.parse(path.read_text(), filename=str(path)))
        found += scanner.found
    return found
