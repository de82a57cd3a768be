"""Packaging: the project builds into a wheel that holds the engine, the storage layer, the built-in
scenarios and the ``fusion`` command, declares the runtime dependencies of requirements.txt, and reports
its version.

The wheel is built from a copy of the checkout (setuptools writes build/ and *.egg-info next to the
sources) without build isolation, so no download is needed. The slow check, a fresh virtual environment
with ``pip install .`` and a working ``fusion --help``, needs the package index and a few minutes: it runs
with ``FUSION_PACKAGING_VENV=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
SKIP_COPY = shutil.ignore_patterns(
    ".git", ".venv", "data", ".cache", "build", "dist", "*.egg-info", "__pycache__", "test-artifacts", ".pytest_cache"
)


def _requirements(path: Path) -> dict[str, Requirement]:
    out = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            out[req.name.lower()] = req
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src") / "fusion-explorer"
    shutil.copytree(ROOT, src, ignore=SKIP_COPY)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = out.glob("fusion_explorer-*.whl")
    return built


def test_wheel_holds_the_packages_the_scenarios_and_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = whl.read(info).decode()
        metadata = whl.read(info.replace("entry_points.txt", "METADATA")).decode()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"fusion", "storage"}  # no app/, tests/, bench/ or data/ in site-packages
    for module in ("fusion/__init__.py", "fusion/__main__.py", "fusion/types.py", "storage/db.py",
                   "storage/export.py", "storage/migrations.py"):  # fmt: skip
        assert module in names, module
    assert any(n.startswith("fusion/cli") and n.endswith(".py") for n in names)  # fusion/cli.py or fusion/cli/
    assert not any("__pycache__" in n for n in names)
    shipped = {Path(n).name for n in names if n.startswith("fusion/scenarios/")}
    assert shipped == {p.name for p in (ROOT / "fusion" / "scenarios").glob("*.json")} and shipped
    assert re.search(r"^\[console_scripts\]\s*\nfusion = fusion\.cli:main\s*$", entry_points, re.M), entry_points
    assert f"Version: {PYPROJECT['project']['version']}" in metadata
    requires = [Requirement(line.removeprefix("Requires-Dist: ")) for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]  # fmt: skip
    assert {r.name.lower() for r in requires if not r.marker} == {
        Requirement(d).name.lower() for d in PYPROJECT["project"]["dependencies"]
    }
    (pg,) = [r for r in requires if r.marker]
    assert pg.name == "psycopg" and "binary" in pg.extras and 'extra == "postgres"' in str(pg.marker)


def test_dependencies_mirror_requirements_txt() -> None:
    """Every pin of requirements.txt satisfies pyproject's range, and no dependency is missing from either;
    psycopg (PostgreSQL only) is the `postgres` extra."""
    pinned = _requirements(ROOT / "requirements.txt")
    declared = {Requirement(d).name.lower(): Requirement(d) for d in PYPROJECT["project"]["dependencies"]}
    extras = {Requirement(d).name.lower(): Requirement(d) for d in PYPROJECT["project"]["optional-dependencies"]["postgres"]}
    assert set(declared) | set(extras) == set(pinned)
    assert set(extras) == {"psycopg"} and not set(declared) & set(extras)
    for name, req in {**declared, **extras}.items():
        (pin,) = pinned[name].specifier
        assert pin.operator == "==", f"requirements.txt pins {name}"
        assert req.specifier.contains(pin.version), f"{name} {pin.version} is outside pyproject's {req.specifier}"
        assert req.extras == pinned[name].extras, name


def test_version_comes_from_the_project() -> None:
    import fusion

    assert fusion.__version__ == PYPROJECT["project"]["version"]  # metadata, or the checkout's pyproject


def test_version_without_metadata_or_pyproject(tmp_path: Path) -> None:
    """An installed copy whose metadata is gone and that has no pyproject.toml beside it still imports."""
    shutil.copytree(ROOT / "fusion", tmp_path / "fusion", ignore=SKIP_COPY)
    code = "import fusion; print(fusion.__version__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The shared venv may have the project installed (then its metadata answers); never a traceback.
    assert proc.stdout.strip() in {"0+unknown", PYPROJECT["project"]["version"]}


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FUSION_PACKAGING_VENV") != "1",
    reason="builds a fresh venv and installs the dependencies from the package index; FUSION_PACKAGING_VENV=1 runs it",
)
def test_pip_install_in_a_fresh_venv_gives_a_working_fusion_command(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP_COPY)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    install = subprocess.run([*pip, "install", "-q", str(src)], capture_output=True, text=True, timeout=1800)
    assert install.returncode == 0, install.stderr[-3000:]
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "LITELLM_OFFLINE_MODE": "true"}
    fusion = str(venv / "bin" / "fusion")
    for args in (["--help"], ["scenarios"]):
        proc = subprocess.run([fusion, *args], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    assert "batch" in subprocess.run([fusion, "--help"], capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import fusion; print(fusion.__version__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert version.stdout.strip() == PYPROJECT["project"]["version"]
    # The editable install works too, in the same venv.
    editable = subprocess.run([*pip, "install", "-q", "--no-deps", "-e", str(src)], capture_output=True, text=True, timeout=600)
    assert editable.returncode == 0, editable.stderr[-3000:]
    proc = subprocess.run([fusion, "--help"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and "batch" in proc.stdout
