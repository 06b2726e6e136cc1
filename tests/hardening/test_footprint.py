"""What an idle process imports (S8: web, worker and beat under 600 MB together). Heavy
libraries that only some requests or tasks use are imported on first use; these tests keep a
module-level import from quietly bringing them back into every process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Imported at first use only: validation (stix2 and its ANTLR pattern parser) and MISP
# conversion (misp-stix with python-stix and cybox).
FIRST_USE_ONLY = ("stix2", "stix2patterns", "antlr4", "misp_stix_converter")


def modules_after(code: str) -> set[str]:
    """Top-level packages imported by a fresh interpreter that runs `code`."""
    script = (
        code
        + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "exchange.settings", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_web_process_with_its_urls_imports_no_validation_library() -> None:
    loaded = modules_after(
        "from exchange.wsgi import application\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns"
    )
    assert loaded.isdisjoint(FIRST_USE_ONLY), loaded & set(FIRST_USE_ONLY)


def test_celery_process_with_its_tasks_imports_no_validation_library() -> None:
    loaded = modules_after("from exchange.celery import app\napp.loader.import_default_modules()")
    assert "alerts" in loaded  # the tasks were imported
    assert loaded.isdisjoint(FIRST_USE_ONLY), loaded & set(FIRST_USE_ONLY)


def test_validation_imports_stix2_on_first_use() -> None:
    loaded = modules_after(
        "import django\ndjango.setup()\nfrom exchange import stix\n"
        "stix.validate_pattern(\"[ipv4-addr:value = '198.51.100.7']\")\n"
        "stix.has_created_by_ref('indicator')"
    )
    assert {"stix2", "stix2patterns"} <= loaded


def test_types_other_libraries_register_stay_unknown_whatever_was_imported_first() -> None:
    """The known types are stix2's own even when misp-stix (which registers `x-misp-*` classes
    in stix2's registry) was imported before the first validation."""
    import misp_stix_converter  # noqa: F401  (registers its custom classes)

    from exchange import stix

    stix._stix21_type_names.cache_clear()
    custom = {
        "type": "x-misp-object",
        "id": "x-misp-object--6f3c1a6e-4a53-4d8b-9d1e-2f1b8c7a9e01",
        "spec_version": "2.1",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
    }
    with pytest.raises(stix.StixError) as caught:
        stix.validate_object(custom)
    assert caught.value.code == "unknown_type"
    assert "indicator" in stix._stix21_type_names("objects")
    assert "ipv4-addr" in stix._stix21_type_names("observables")
