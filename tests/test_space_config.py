"""The Hugging Face Space is configured by the README's front matter: Spaces installs the Gradio of
``sdk_version`` and the Python of ``python_version``, then ``requirements.txt``, then runs ``app_file``."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="tomllib comes with Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    """The YAML between the README's first two ``---`` lines."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's front matter (a '---' line)"
    block, sep, _ = text[4:].partition("\n---\n")
    assert sep, "README.md's front matter has no closing '---' line"
    return yaml.safe_load(block)


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def dependency(name: str) -> Requirement:
    found = [r for r in map(Requirement, pyproject()["project"]["dependencies"]) if r.name == name]
    assert len(found) == 1, f"pyproject.toml should list {name} once among the dependencies, found {found}"
    return found[0]


def test_the_space_runs_the_app_with_a_gradio_the_package_accepts():
    meta = front_matter()
    assert meta["sdk"] == "gradio" and (ROOT / meta["app_file"]).is_file()
    sdk = meta.get("sdk_version")
    assert isinstance(sdk, str), f"sdk_version must be a version string like '6.31.0', got {sdk!r}"
    gradio = dependency("gradio")
    assert gradio.specifier.contains(Version(sdk)), (
        f"the Space would install gradio {sdk}, outside pyproject.toml's range {gradio.specifier}")


def test_the_space_python_is_one_the_package_installs_on():
    version = front_matter().get("python_version")
    # unquoted, YAML reads 3.10 as the number 3.1: the front matter must quote it
    assert isinstance(version, str), f"python_version must be a quoted string like \"3.11\", got {version!r}"
    requires = pyproject()["project"]["requires-python"]
    assert SpecifierSet(requires).contains(Version(version)), (
        f"python_version {version} is outside requires-python {requires}")


def test_requirements_install_this_package():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    assert "." in [ln for ln in lines if ln and not ln.startswith("#")]
