"""The documentation says what the code does: settings, routes, commands, links, the example test.

The runnable example of ``docs/testing.md`` is run as it is, with pytest, in a subprocess.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.urls import URLPattern

from django_pi_payments import urls
from django_pi_payments.conf import DEFAULTS
from django_pi_payments.sandbox import build_parser
from django_pi_payments.sandbox.routes import ROUTES
from tests.doc_examples import run_example_test

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def read(name: str) -> str:
    return (ROOT / name).read_text()


def shown(value: Any) -> str:
    """A setting's default as the docs write it: ``None``, ``"text"``, ``10``, ``True``."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_the_readme_opens_with_make_demo_and_make_test() -> None:
    lines = read("README.md").splitlines()
    assert lines[0] == "# django-pi-payments"
    first_block = lines[lines.index("```sh") + 1 : lines.index("```", lines.index("```sh") + 1)]
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]
    assert lines.index("```sh") < 5


@pytest.mark.parametrize("setting", sorted(DEFAULTS))
def test_configuration_documents_every_setting_and_its_default(setting: str) -> None:
    row = f"| `{setting}` | `{shown(DEFAULTS[setting])}` |"
    assert row in read("docs/configuration.md")


def test_configuration_documents_every_system_check() -> None:
    checks = set(re.findall(r'id="(pi_payments\.[EW]\d+)"', read("django_pi_payments/checks.py")))
    documented = set(re.findall(r"`(pi_payments\.[EW]\d+)`", read("docs/configuration.md")))
    assert checks
    assert checks == documented


def test_frontend_documents_every_route() -> None:
    frontend = read("docs/frontend.md")
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        name = pattern.name or ""
        path = "payments/<identifier>" if name == "payment-detail" else name
        assert f"| `pi_payment/{path}` |" in frontend, name
        assert f"`{name}`" in frontend, name


def test_testing_documents_every_sandbox_option_and_control_route() -> None:
    testing = read("docs/testing.md")
    for action in build_parser()._actions:
        for option in action.option_strings:
            if option.startswith("--") and option != "--help":
                assert f"`{option}`" in testing, option
    for route in ROUTES:
        if route.kind == "control":
            assert route.template in testing, route.template


def test_relative_links_resolve() -> None:
    for document in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" in target:
                continue
            assert (document.parent / target).exists(), f"{document.name}: {target}"


def test_the_demo_script_parses_and_make_demo_runs_it() -> None:
    assert (
        subprocess.run(["bash", "-n", str(ROOT / "scripts/demo.sh")], check=False).returncode == 0
    )
    makefile = read("Makefile")
    assert re.search(r"^demo: venv ## .+\n\tscripts/demo\.sh$", makefile, flags=re.MULTILINE)
    assert re.search(r"^\.PHONY:.* demo ", makefile, flags=re.MULTILINE)


def test_the_example_tests_of_testing_md_pass(tmp_path: Path) -> None:
    assert "2 passed" in run_example_test("docs/testing.md", tmp_path)
