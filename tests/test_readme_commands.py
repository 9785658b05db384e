"""Every command line in the README and docs/ names a script of the repository and flags that script has.

The commands themselves run at tiny size elsewhere (tests/test_demo.py, tests/test_eval_cli.py,
tests/test_youtube_generic.py, tests/test_benchmark.py, tests/test_training.py); this walk
catches a renamed script or flag that the documentation still uses. Each script's ``--help`` is asked of its
``main(argv)`` in-process.
"""

import re
import shlex
from functools import cache

import pytest

from tests.helpers import ROOT, call_main

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for each shell line of a code block that runs Python or bash on a repository file."""
    found = []
    for doc in DOCUMENTS:
        for block in CODE_BLOCK.findall(doc.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                for part in re.split(r"&&|;|\|", line.split("#", 1)[0]):
                    part = part.strip()
                    if re.search(r"(^|\s)(python3?|bash|torchrun)\s", f" {part} "):
                        found.append((doc.name, part))
    return found


def target(command: str) -> tuple[str, list[str]] | None:
    """The repository file a command runs (``x.py``, ``-m scripts.x``, ``bash x.sh``) and its long flags."""
    tokens = shlex.split(command.replace("[", " ").replace("]", " ").replace("|", " "))
    script = None
    for i, token in enumerate(tokens):
        if token.endswith((".py", ".sh")) and not token.startswith("-"):
            script = token
            rest = tokens[i + 1 :]
            break
        if token == "-m" and i + 1 < len(tokens):
            module = tokens[i + 1]
            if module in ("pytest", "pip"):
                return None  # runs the tests or installs: no script of the repository to check
            if module == "torch.distributed.launch":
                continue
            script = module.replace(".", "/") + ".py"
            rest = tokens[i + 2 :]
            break
    if script is None:
        return None
    return script, [t.split("=", 1)[0] for t in rest if t.startswith("--")]


COMMANDS = documented_commands()
TARGETS = sorted({(doc, *[t[0]], tuple(t[1])) for doc, cmd in COMMANDS if (t := target(cmd))})


@cache
def help_text(script: str) -> str:
    result = call_main(script[: -len(".py")].replace("/", "."), ["--help"])
    assert result.returncode == 0, f"{script} --help failed:\n{result.stderr[-2000:]}"
    return result.stdout


def test_the_documents_have_commands():
    assert len(COMMANDS) >= 15 and any("demo.py" in c for _, c in COMMANDS)


@pytest.mark.parametrize(("doc", "script", "flags"), TARGETS, ids=[f"{d}:{s}" for d, s, _ in TARGETS])
def test_documented_command_uses_real_script_and_flags(doc, script, flags):
    path = ROOT / script
    assert path.is_file(), f"{doc} runs {script}, which is not in the repository"
    if script.endswith(".sh"):
        return
    text = help_text(script)
    unknown = [f for f in flags if not re.search(rf"{re.escape(f)}\b", text)]
    assert not unknown, f"{doc}: {script} has no flag(s) {unknown}"


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_every_relative_link_resolves_and_every_document_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    broken = []
    for doc in [*DOCUMENTS, ROOT / "benchmarks" / "README.md"]:
        for target, _ in LINK.findall(doc.read_text()):
            if not target.startswith(("http://", "https://")) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken
    linked = {(ROOT / target).resolve() for target, _ in LINK.findall(readme)}
    unlinked = [d.relative_to(ROOT).as_posix() for d in [*DOCUMENTS[1:], ROOT / "benchmarks" / "README.md"] if d.resolve() not in linked]
    assert not unlinked, f"documents the README does not link: {unlinked}"
    assert len(readme.splitlines()) <= 200
