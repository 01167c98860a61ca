"""The portal as a district installs it: a wheel built from pyproject.toml carries the pages, and
installed in a virtualenv of its own it serves them. Found by the deployment review: the wheel held
no templates/ or static/, so `pip install '.[postgres]'` gave a portal whose every page was a
TemplateNotFound while /healthz said ok, and that made site-packages/instance."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from portal.config import ROOT, ConfigError

# What a build needs (tests/, examples/, bench/ are not packaged).
SOURCES = ("pyproject.toml", "README.md", "portal", "kiosk", "templates", "static")
# pip's words when the build's own setuptools cannot be fetched: no index reachable.
NO_INDEX = ("No matching distribution found", "Could not find a version", "Network is unreachable",
            "Failed to establish a new connection")


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the sources (the checkout gets no build/ folder)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                               str(work / "dist"), str(source)],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("building the wheel took over 2 minutes (pip's index is slow or unreachable)")
    if done.returncode and any(words in done.stdout + done.stderr for words in NO_INDEX):
        pytest.skip("no package index to fetch the build's setuptools from: the wheel can't be built "
                    "here (" + (done.stderr.strip().splitlines() or ["pip failed"])[-1] + ")")
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (work / "dist").glob("student_portal-*.whl")
    return wheel


@pytest.mark.no_database
def test_every_package_is_named_in_pyproject():
    # The packages are listed by hand (the pages' package-dir mapping needs it): a new one left
    # out would be missing from every district's install.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for top in ("portal", "kiosk") for init in (ROOT / top).rglob("__init__.py")}
    assert found <= set(config["packages"])
    assert config["package-dir"] == {"portal.templates": "templates", "portal.static": "static"}


@pytest.mark.no_database
def test_the_wheel_carries_the_templates_and_static_files(built_wheel):
    names = set(zipfile.ZipFile(built_wheel).namelist())
    for folder in ("templates", "static"):
        ours = {f"portal/{folder}/{path.relative_to(ROOT / folder).as_posix()}"
                for path in (ROOT / folder).rglob("*") if path.is_file()}
        assert ours and ours <= names, sorted(ours - names)[:5]
    assert "portal/migrations/env.py" in names
    assert not any(name.startswith(("templates/", "static/", "instance/", "tests/")) for name in names)


SERVE = """
import sys, sysconfig
from pathlib import Path
import portal
from portal import create_app
app = create_app()
client = app.test_client()
login = client.get("/login")
css = client.get("/static/css/portal.css")
site = Path(sysconfig.get_paths()["purelib"])
print(login.status_code, b'name="password"' in login.data, css.status_code)
print(Path(portal.__file__).is_relative_to(site), app.instance_path == str(Path(sys.prefix) / "var" / "portal-instance"),
      (site / "instance").exists())
"""


@pytest.mark.no_database
def test_the_installed_wheel_serves_the_sign_in_page(built_wheel, tmp_path, redis_server):
    # A virtualenv of its own, with the wheel installed and the checkout nowhere on its path; the
    # dependencies come from the test run's own site-packages, listed in a .pth file (a plain path:
    # the checkout's editable install there is not loaded).
    import sysconfig
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "test-run-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(built_wheel)], check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "PYTHON"))}
    env.update(PORTAL_REDIS_URL=redis_server.url,
               PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    served = subprocess.run([str(python), "-c", SERVE], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert served.returncode == 0, served.stderr
    assert served.stdout.split() == ["200", "True", "200", "True", "True", "False"], served.stderr


def test_without_its_templates_the_portal_refuses_to_start(settings, monkeypatch, tmp_path):
    import portal
    monkeypatch.setattr(portal, "PACKAGE", tmp_path / "portal")
    monkeypatch.setattr(portal, "ROOT", tmp_path)
    with pytest.raises(ConfigError) as refused:
        portal.create_app({"SETTINGS": settings})
    assert str(refused.value) == (
        f"the portal's templates are not in {tmp_path}/portal/templates: install the portal from a "
        f"wheel or sdist built with its pyproject.toml (or run it from a checkout of the repository)")


@pytest.mark.no_database
def test_installed_it_reads_the_pages_in_its_package_and_never_the_folders_beside_it(monkeypatch, tmp_path):
    # Installed, "beside the package" is site-packages, where another package may have left a
    # templates/ of its own.
    import portal
    for base in (tmp_path / "portal", tmp_path):
        (base / "templates").mkdir(parents=True)
        (base / "templates" / "base.html").write_text("")
    monkeypatch.setattr(portal, "PACKAGE", tmp_path / "portal")
    monkeypatch.setattr(portal, "ROOT", tmp_path)
    monkeypatch.setattr(portal, "FROM_CHECKOUT", False)
    assert portal.page_folders() == (tmp_path / "portal" / "templates", tmp_path / "portal" / "static")
    (tmp_path / "portal" / "templates" / "base.html").unlink()
    with pytest.raises(ConfigError):
        portal.page_folders()
    monkeypatch.setattr(portal, "FROM_CHECKOUT", True)     # a checkout: templates/ beside portal/
    assert portal.page_folders() == (tmp_path / "templates", tmp_path / "static")
