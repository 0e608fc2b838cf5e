"""The codebase stays as the style asks: ruff-clean (complexity at most 15) and fully typed (layers: test_layers)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_finds_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# Callables whose `open` is of bytes or of an archive, never of text in the locale's encoding
BINARY_OPENERS = {"os", "tarfile", "zipfile", "gzip", "bz2", "lzma"}


def _given(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _binary(call: ast.Call, mode_at: int) -> bool:
    mode = _given(call, "mode") or (call.args[mode_at] if len(call.args) > mode_at else None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and "b" in mode.value


def locale_encoded(call: ast.Call) -> bool:
    """Whether a call reads or writes text in the locale's encoding: open()/Path.open/os.fdopen in text mode,
    Path.read_text/write_text, or a subprocess's output as text, without `encoding=`."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
    if _given(call, "encoding") is not None:
        return False
    if name == "open" and owner not in BINARY_OPENERS:
        return not _binary(call, 1 if owner is None else 0)
    if name == "fdopen":
        return not _binary(call, 1)
    if name == "read_text":
        return not call.args  # (importlib.metadata's read_text(filename) takes no encoding)
    if name == "write_text":
        return len(call.args) < 2
    if owner == "subprocess" and name in ("run", "Popen", "check_output", "check_call"):
        text = _given(call, "text") or _given(call, "universal_newlines")
        return isinstance(text, ast.Constant) and text.value is True
    return False


def test_every_text_migratekit_reads_or_writes_names_its_encoding() -> None:
    """Under a locale that is ASCII alone (LC_ALL=C without Python's UTF-8 mode: many CI images) a text read in
    the locale's encoding stopped `drift` at the runner template's first dash, decoded a commit subject in another
    language as a traceback, and turned every accent of a source file into U+FFFD: files are UTF-8."""
    found = []
    for path in sorted((REPO / "tools" / "migratekit").rglob("*.py")):
        if "templates" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and locale_encoded(node):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not found, "\n".join(found)


def test_the_encoding_check_sees_each_way_of_opening_text() -> None:
    calls = {
        'open(p, "w")': True,
        'open(p, "wb")': False,
        'open(p, "w", encoding="utf-8")': False,
        "path.open()": True,
        'path.open("rb")': False,
        "os.open(p, os.O_RDONLY)": False,
        'os.fdopen(fd, "a")': True,
        "tarfile.open(fileobj=f)": False,
        "path.read_text()": True,
        'path.read_text(errors="replace")': True,
        'path.read_text(encoding="utf-8", errors="replace")': False,
        'distribution.read_text("direct_url.json")': False,
        "path.write_text(text)": True,
        'path.write_text(text, encoding="utf-8")': False,
        'subprocess.run(["git"], text=True)': True,
        'subprocess.run(["git"], encoding="utf-8")': False,
        'subprocess.run(["git"], capture_output=True)': False,
    }
    seen = {code: locale_encoded(ast.parse(code, mode="eval").body) for code in calls}  # type: ignore[arg-type]
    assert seen == calls
