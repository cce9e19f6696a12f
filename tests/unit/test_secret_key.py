"""SECRET_KEY: the environment's, or one generated per install; never a well-known one."""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.servers import REPO_ROOT, server_env
from voiceproject.secret_key import WELL_KNOWN_KEYS, load_secret_key


def test_a_configured_key_is_used_and_no_file_is_written(tmp_path):
    key_file = tmp_path / ".secret_key"
    assert load_secret_key("a-real-secret-from-the-environment", key_file) == (
        "a-real-secret-from-the-environment"
    )
    assert not key_file.exists()


def test_without_one_a_key_is_generated_once_private_and_reused(tmp_path):
    key_file = tmp_path / ".secret_key"
    first = load_secret_key("", key_file)
    assert len(first) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_secret_key("", key_file) == first
    assert list(tmp_path.iterdir()) == [key_file], "no draft left behind"


def test_installs_get_different_keys(tmp_path):
    assert load_secret_key("", tmp_path / "a") != load_secret_key("", tmp_path / "b")


@pytest.mark.parametrize("known", sorted(WELL_KNOWN_KEYS))
def test_a_well_known_key_is_refused(tmp_path, known):
    with pytest.raises(ImproperlyConfigured, match="well-known"):
        load_secret_key(known, tmp_path / ".secret_key")


def test_the_server_refuses_to_start_on_the_old_development_key():
    env = server_env(SECRET_KEY="dev-only-insecure-key-set-SECRET_KEY-in-production")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "SECRET_KEY is a well-known example value" in done.stderr


def test_the_key_file_is_kept_out_of_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".secret_key"], cwd=REPO_ROOT, timeout=30
    )
    assert ignored.returncode == 0
