"""Configuration is parsed once at start and fails loudly, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Config, ConfigError
from tests.helpers import procfile

ROOT = Path(__file__).resolve().parent.parent


def test_defaults():
    c = Config.from_env({})
    assert (c.port, c.relay_port, c.status_ttl, c.mailbox_max) == (5000, 53450, 90, 200)
    assert c.admin_token is None and c.redis_url is None


def test_values_are_read():
    c = Config.from_env({"PORT": "8080", "STATUS_TTL": "30", "SSM_ADMIN_TOKEN": "t" * 16,
                         "REDIS_URL": "redis://x:1/0", "MAILBOX_MAX": "5"})
    assert (c.port, c.status_ttl, c.admin_token, c.redis_url, c.mailbox_max) == (
        8080, 30, "t" * 16, "redis://x:1/0", 5)


@pytest.mark.parametrize("env,name", [
    ({"PORT": "http"}, "PORT"), ({"STATUS_TTL": "0"}, "STATUS_TTL"),
    ({"RELAY_PORT": "70000"}, "RELAY_PORT"), ({"MAILBOX_MAX": "1.5"}, "MAILBOX_MAX"),
    ({"SSM_ADMIN_TOKN": "typo"}, "SSM_ADMIN_TOKN"),
])
def test_malformed_or_unknown_setting_names_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Config.from_env(env)


def test_missing_redis_url_says_what_to_set():
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Config.from_env({}).require_redis()


def _env_without_redis() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PORT"] = "0"
    return env


@pytest.mark.parametrize("name", sorted(procfile()))
def test_process_without_redis_url_fails_at_once(name):
    env = _env_without_redis()
    env["PORT"] = "5999"
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(procfile()[name].strip(), shell=True, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "REDIS_URL" in proc.stderr


def test_admin_token_shorter_than_16_characters_is_refused():
    with pytest.raises(ConfigError, match="SSM_ADMIN_TOKEN must be at least 16 characters"):
        Config.from_env({"SSM_ADMIN_TOKEN": "x" * 15})
    assert Config.from_env({"SSM_ADMIN_TOKEN": "x" * 16}).admin_token == "x" * 16
    assert Config.from_env({"SSM_ADMIN_TOKEN": ""}).admin_token is None  # unset: admin refused


@pytest.mark.parametrize("name", sorted(procfile()))
def test_process_with_a_short_admin_token_refuses_to_start(name, redis_server):
    env = _env_without_redis()
    env.update(PORT="5999", RELAY_PORT="5998", REDIS_URL=redis_server.url,
               SSM_ADMIN_TOKEN="short-token")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(procfile()[name].strip(), shell=True, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "SSM_ADMIN_TOKEN must be at least 16 characters" in proc.stderr


def test_readme_documents_every_setting():
    from shared.config import env_table

    readme = (ROOT / "README.md").read_text()
    assert [name for name, _ in env_table() if f"`{name}`" not in readme] == []


def test_no_setting_is_declared_twice():
    """A second declaration of a field silently wins (it once made WEB_WORKER_CONNECTIONS 1,000
    instead of the documented 10,000): every field name and every variable is declared once."""
    import ast
    tree = ast.parse((ROOT / "shared" / "config.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    names = [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]
    assert sorted({n for n in names if names.count(n) > 1}) == []
    envs = [f.metadata["env"] for f in __import__("dataclasses").fields(Config)]
    assert sorted({e for e in envs if envs.count(e) > 1}) == []


def test_web_worker_connections_default_is_the_documented_ten_thousand():
    c = Config.from_env({})
    assert (c.web_worker_connections, c.web_concurrency) == (10000, 2)
