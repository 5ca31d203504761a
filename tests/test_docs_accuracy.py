"""Claims of the docs match the code they describe, and their examples work when pasted."""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from pathlib import Path

import pytest
from django.views.debug import SafeExceptionReporterFilter

from django_pi_payments.admin.payments import MAX_EVENTS_SHOWN
from django_pi_payments.auth import MAX_TOKEN_LENGTH
from django_pi_payments.http import MAX_ANSWER_BYTES, POOL_SIZE
from django_pi_payments.services.payments import MAX_FRONTEND_ERRORS, MAX_VERIFICATION_FAILURES
from django_pi_payments.throttles import DEFAULT_RATES
from django_pi_payments.views.base import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_pi_payments"
DOC_PAGES = ["README.md", *sorted(f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md"))]
GET_LOGGER = re.compile(r'getLogger\("(django_pi_payments\.[a-z_.]+)"\)')


def read(name: str) -> str:
    return (ROOT / name).read_text()


def package_loggers() -> set[str]:
    """The loggers the app (not the sandbox, a development tool) writes to."""
    names = set()
    for module in PACKAGE.rglob("*.py"):
        if "sandbox" not in module.relative_to(PACKAGE).parts:
            names.update(GET_LOGGER.findall(module.read_text()))
    return names


def test_deployment_names_every_logger_to_monitor() -> None:
    page = " ".join(read("docs/deployment.md").split())
    (listed,) = re.findall(r"The `django_pi_payments` loggers \(([^)]*)\)", page)
    short = re.findall(r"`(?:django_pi_payments)?(\.[a-z_]+)`", listed)
    assert package_loggers()
    assert {f"django_pi_payments{name}" for name in short} == package_loggers()


def test_security_lists_the_names_django_hides_in_error_reports() -> None:
    page = " ".join(read("docs/security.md").split())
    (listed,) = re.findall(r"hiding only the names that contain ([^.]*)\.", page)
    documented = set(re.findall(r"`([A-Z_]+)`", listed))
    assert documented == set(SafeExceptionReporterFilter.hidden_settings.pattern.split("|"))


def python_blocks(name: str) -> list[str]:
    """The ``python`` code blocks of a page, dedented (some sit in list items)."""
    blocks = re.findall(r"```python\n(.*?)```", read(name), flags=re.DOTALL)
    return [textwrap.dedent(block) for block in blocks]


def bound_names(tree: ast.AST) -> set[str]:
    """The names a code block imports, defines or assigns, and the builtins."""
    names = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


@pytest.mark.parametrize("page", DOC_PAGES)
def test_the_signatures_of_documented_functions_name_only_what_their_block_imports(
    page: str,
) -> None:
    """Python evaluates annotations when the ``def`` runs: an annotation naming a class the block
    does not import makes the pasted module fail to import (a NameError in ``manage.py check``)."""
    unbound = []
    for block in python_blocks(page):
        try:
            tree = ast.parse(block)
        except SyntaxError:  # a fragment with `...` in it, not a module to paste
            continue
        known = bound_names(tree)
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
            annotations = [argument.annotation for argument in arguments if argument.annotation]
            annotations += [function.returns] if function.returns else []
            unbound += [
                f"{function.name}: {node.id}"
                for annotation in annotations
                for node in ast.walk(annotation)
                if isinstance(node, ast.Name) and node.id not in known
            ]
    assert unbound == []


def test_testing_tells_how_to_run_the_fixture_in_a_project() -> None:
    """The example needs pytest-django (``client``, ``settings``, ``db``) and the project's
    settings module; a page that shows only the test leaves a new user at "fixture not found"."""
    section = read("docs/testing.md").split("## In your own tests", 1)[1].split("```python")[0]
    assert "pip install pytest pytest-django" in section
    assert re.search(r"^DJANGO_SETTINGS_MODULE = \w+\.settings$", section, flags=re.MULTILINE)
    assert "PI_API_KEY" in section


def test_the_limits_the_docs_state_are_the_code_s() -> None:
    stated = {
        ("docs/frontend.md", f"a body over {MAX_BODY_BYTES // 1024} KiB"),
        ("docs/frontend.md", f"(the first {MAX_FRONTEND_ERRORS} of a payment)"),
        ("docs/security.md", f"larger than {MAX_ANSWER_BYTES // 1024 // 1024} MB"),
        ("docs/authentication.md", f"longer than {MAX_TOKEN_LENGTH} characters"),
        ("docs/deployment.md", f"keeps up to {POOL_SIZE} connections open to Pi"),
        ("docs/operations.md", f"keeps its first {MAX_VERIFICATION_FAILURES} of each code"),
        ("docs/operations.md", f"(inline, the newest {MAX_EVENTS_SHOWN}, newest first;"),
    }
    for scope, rate in DEFAULT_RATES.items():
        stated.add(("docs/authentication.md", f"| `{scope}` | `{rate}` |"))
        stated.add(("docs/configuration.md", f"`{scope}` (default `{rate}`"))
    missing = [(page, claim) for page, claim in stated if claim not in " ".join(read(page).split())]
    assert missing == []
