"""The package installed from its wheel, as docker/Dockerfile installs it, parses every DAG.

An editable install hides where the package looks for its files: the source tree is next to the
DAGs. Here the wheel is built, installed non-editable into a fresh venv, and the DAGs are laid out
as docker-compose.yml mounts them, with the environment it gives the Airflow services. Every DAG
must parse, with the package imported from the venv's site-packages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

from tests.helpers import REPO

pytestmark = pytest.mark.integration

UV = Path(sys.executable).with_name("uv")
COMPOSE_FILE = REPO / "docker-compose.yml"
# The official image's AIRFLOW_HOME; docker-compose.yml mounts the DAGs and volumes under it.
IMAGE_AIRFLOW_HOME = "/opt/airflow"
# Compose interpolation as the file uses it: ${NAME:-default}, with nothing set in the environment.
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(:-(?P<default>[^}]*))?\}")

PARSE_DAGS = """
import json, sys
from airflow.configuration import conf
from airflow.dag_processing.dagbag import DagBag
import frontier_provider
from frontier_provider.dag_defaults import entities_file

bag = DagBag(dag_folder=conf.get("core", "dags_folder"))
sys.stdout.write("\\n")  # Airflow logs to stdout too: the report is the last line
json.dump(
    {
        "dags": sorted(bag.dag_ids),
        "import_errors": bag.import_errors,
        "package": frontier_provider.__file__,
        "entities_file": str(entities_file()),
        "purelib": __import__("sysconfig").get_paths()["purelib"],
    },
    sys.stdout,
)
"""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def interpolate(value: str) -> str:
    """A compose value with its ``${NAME:-default}`` references resolved to their defaults."""
    return _INTERPOLATION.sub(lambda match: match["default"] or "", str(value)).replace("$$", "$")


def airflow_service() -> dict:
    """The compose file's Airflow scheduler service: its environment and volumes (the common ones)."""
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose["services"]["airflow-scheduler"]


@pytest.fixture(scope="module")
def installed_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel, built from the files docker/Dockerfile copies, installed non-editable."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "frontier_provider", source / "frontier_provider")
    dist = tmp_path_factory.mktemp("dist")
    run([str(UV), "build", "--wheel", "--out-dir", str(dist), str(source)])
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("venv") / "venv"
    run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    # The image installs the celery extra: the compose file runs CeleryExecutor.
    run([str(UV), "pip", "install", "--quiet", "--python", str(python), "-c", str(REPO / "constraints.txt"),
         f"{wheel}[celery]"])  # fmt: skip
    return venv


def compose_layout(root: Path) -> dict[str, str]:
    """Lay out the Airflow services' mounts under ``root`` and return their environment, remapped there.

    Bind mounts (``./dags:/opt/airflow/dags``) get a copy of the repository's folder, named volumes an
    empty folder; paths under ``/opt/airflow`` in the environment point into ``root``.
    """
    service = airflow_service()
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        destination = root / target.lstrip("/")
        if source.startswith("./"):
            shutil.copytree(REPO / source, destination)
        else:
            destination.mkdir(parents=True)
    local_home = str(root / IMAGE_AIRFLOW_HOME.lstrip("/"))
    env = {
        name: interpolate(value).replace(IMAGE_AIRFLOW_HOME, local_home)
        for name, value in service["environment"].items()
    }
    return {
        **env,
        "AIRFLOW_HOME": local_home,
        # The compose database host does not exist here; parsing DAGs needs no metadata database.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{local_home}/airflow.db",
        "PATH": os.environ["PATH"],
        "HOME": str(root),
    }


def test_compose_mounts_the_dags_folder_it_configures() -> None:
    service = airflow_service()
    env = service["environment"]
    mounts = dict(reversed(volume.split(":")[:2]) for volume in service["volumes"])
    assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
    assert (REPO / "dags" / "config" / "frontier_entities.yaml").is_file()
    # The DAGs folder's entities file is the one used, not a path that a new user would have to set.
    assert "FRONTIER_ENTITIES_FILE" not in env


def test_a_wheel_install_parses_every_dag_laid_out_as_compose_mounts_them(
    installed_venv: Path, tmp_path: Path
) -> None:
    root = tmp_path / "container"
    env = compose_layout(root)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = run([str(installed_venv / "bin" / "python"), "-c", PARSE_DAGS], cwd=workdir, env=env)
    parsed = json.loads(result.stdout.splitlines()[-1])

    assert parsed["import_errors"] == {}
    # The same DAGs as the source tree gives, where nothing depends on how the package is installed.
    assert parsed["dags"] == sorted(DagBag(dag_folder=str(REPO / "dags")).dag_ids)
    assert len(parsed["dags"]) == 6
    package = Path(parsed["package"])
    assert package.is_relative_to(Path(parsed["purelib"])), parsed["package"]
    assert not package.is_relative_to(REPO)
    assert parsed["entities_file"] == str(
        root / "opt" / "airflow" / "dags" / "config" / "frontier_entities.yaml"
    )
