"""`manage.py check --deploy` passes with the production settings compose runs (SECURITY.md,
Deployment). The environment comes from docker-compose.yml itself, so compose and settings
cannot drift apart unnoticed: a knob added to settings with an unsafe default, or a compose
change that switches a protection off, fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?message}`, `${NAME?message}`.
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# What an operator must provide (compose refuses to start without them): test-only values, a
# secret key as long and varied as the deploy check wants.
REQUIRED = {
    "SECRET_KEY": "compose-deploy-check-only-3Jx8vQ2mZr7Lp0Wd5Ky9Tb4Nh6Fs1Gc",
    "POSTGRES_PASSWORD": "compose-deploy-check-only",
}


def substitute(value: str) -> str:
    """A compose value with its variables interpolated as compose does when the operator's
    `.env` sets only what is required."""

    def one(match: re.Match[str]) -> str:
        name, op = match.group("name"), match.group("op")
        if name in REQUIRED:
            return REQUIRED[name]
        if op and op.endswith("?"):
            raise AssertionError(f"compose requires {name}; add a test value to REQUIRED")
        return match.group("arg") if op else ""

    return VARIABLE.sub(one, value).replace("$$", "$")


def compose_environment(service: str) -> dict[str, str]:
    """The service's environment from docker-compose.yml (anchors and `<<` merges resolved by
    YAML). A key without a value passes through from the operator's shell: unset here."""
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = document["services"][service]["environment"]
    assert isinstance(environment, dict), "expected the mapping form of `environment`"
    return {
        str(key): substitute(str(value)) for key, value in environment.items() if value is not None
    }


def deploy_check(environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`check --deploy` in a process of its own with exactly this environment, plus what the
    image sets (Dockerfile `ENV`), its paths mapped from /app to this checkout."""
    image = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PHALANX_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**image, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_substitution_follows_compose_rules():
    assert substitute("${ALLOWED_HOSTS:-localhost},127.0.0.1") == "localhost,127.0.0.1"
    assert substitute("${UNSET}") == ""
    assert substitute("a$$b") == "a$b"
    assert substitute("${SECRET_KEY:?set it}") == REQUIRED["SECRET_KEY"]
    with pytest.raises(AssertionError):
        substitute("${SOMETHING_NEW:?set it}")


@pytest.mark.parametrize("service", ["web", "worker-delivery", "beat", "migrate"])
def test_check_deploy_passes_with_the_compose_settings(service, tmp_path):
    environment = compose_environment(service)
    assert environment["DEBUG"] == "0"
    result = deploy_check(environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_check_notices_a_weakened_setting(tmp_path):
    """The test can fail: turning off the HTTPS redirect in compose would be caught."""
    environment = {**compose_environment("web"), "SECURE_SSL_REDIRECT": "0"}
    result = deploy_check(environment, tmp_path)
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr
