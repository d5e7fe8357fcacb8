"""deploy/: the systemd units parse, run commands that exist, are hardened; env.example documents every variable."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALL = "/opt/customer-bot"
VENV_BIN = f"{INSTALL}/.venv/bin/"
UNITS = {
    "web": DEPLOY / "customer-bot-web.service",
    "bot": DEPLOY / "customer-bot-bot.service",
    "bot@": DEPLOY / "customer-bot-bot@.service",  # extra bot processes (issue 10)
}


# --- a systemd unit file, read the way systemd reads it ----------------------------------------------------------


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections → (key, value) in order; keys may repeat (ExecStartPre, Environment). Fails on malformed lines."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}:{number}: bad section header {line!r}"
            current = line[1:-1]
            assert current not in sections, f"{path.name}:{number}: section [{current}] twice"
            sections[current] = []
            continue
        assert current is not None, f"{path.name}:{number}: a setting outside any section"
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", key.strip()), f"{path.name}:{number}: not KEY=value: {line!r}"
        sections[current].append((key.strip(), value.strip()))
    assert not pending, f"{path.name}: ends in a line continuation"
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= should be set once, found {found}"
    return found[0]


def seconds(text: str) -> float:
    """A systemd time span such as 30, 30s, 1min 30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text):
        total += float(number) * units[unit or "s"]
    return total


@pytest.fixture(params=sorted(UNITS))
def unit(request):
    return request.param, parse_unit(UNITS[request.param])


# --- structure ----------------------------------------------------------------------------------------------


def test_unit_has_its_sections_and_keys(unit):
    name, u = unit
    assert set(u) == {"Unit", "Service", "Install"}
    assert one(u, "Unit", "Description")
    assert one(u, "Service", "User") == one(u, "Service", "Group") == "customer-bot"
    assert one(u, "Service", "WorkingDirectory") == INSTALL
    assert one(u, "Service", "EnvironmentFile") == "/etc/customer-bot/env"
    assert one(u, "Service", "Restart") == "always"
    assert 1 <= seconds(one(u, "Service", "RestartSec")) <= 30
    assert one(u, "Service", "KillSignal") == "SIGTERM"
    assert one(u, "Install", "WantedBy") == "multi-user.target"


def test_unit_is_hardened(unit):
    _, u = unit
    for key in (
        "NoNewPrivileges",
        "PrivateTmp",
        "ProtectHome",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "LockPersonality",
        "RestrictSUIDSGID",
    ):
        assert one(u, "Service", key) == "yes", key
    assert one(u, "Service", "ProtectSystem") == "strict"
    writable = " ".join(values(u, "Service", "ReadWritePaths")).split()
    assert writable == [f"{INSTALL}/instance"], "only the SQLite directory is writable"
    assert set(one(u, "Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert one(u, "Service", "CapabilityBoundingSet") == ""


def test_web_unit_migrates_then_serves_with_gunicorn():
    u = parse_unit(UNITS["web"])
    assert one(u, "Service", "ExecStartPre") == f"{VENV_BIN}flask --app wsgi db upgrade"
    assert one(u, "Service", "ExecStart") == f"{VENV_BIN}gunicorn -c gunicorn.conf.py wsgi:app"
    # The metrics directory is the unit's runtime directory: fresh at every start, gone at stop.
    runtime = one(u, "Service", "RuntimeDirectory")
    env = dict(item.split("=", 1) for line in values(u, "Service", "Environment") for item in shlex.split(line))
    assert env["PROMETHEUS_MULTIPROC_DIR"] == f"/run/{runtime}"
    # systemd waits longer than Gunicorn's graceful stop before it kills.
    graceful = gunicorn_settings({})["graceful_timeout"]
    assert seconds(one(u, "Service", "TimeoutStopSec")) > graceful


@pytest.mark.parametrize("name", ["bot", "bot@"])
def test_bot_unit_runs_run_bot_and_gives_it_its_ten_seconds(name):
    u = parse_unit(UNITS[name])
    assert one(u, "Service", "ExecStart") == f"{VENV_BIN}python run_bot.py"
    assert 10 < seconds(one(u, "Service", "TimeoutStopSec")) <= 30  # the bot exits within 10 s of SIGTERM
    assert "customer-bot-web.service" in one(u, "Unit", "After").split()  # migrated first when both start


# --- every command exists -----------------------------------------------------------------------------------------


def requirement_names() -> set[str]:
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalize(re.split(r"[\[=<>~!;\s]", line, maxsplit=1)[0]))
    return names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def script_package(script: str) -> str | None:
    """The installed distribution that provides console script `script`."""
    for dist in importlib.metadata.distributions():
        for entry in dist.entry_points:
            if entry.group == "console_scripts" and entry.name == script:
                return normalize(dist.metadata["Name"])
    return None


def repo_path(path: str) -> Path:
    assert path.startswith(INSTALL + "/"), f"{path} is outside {INSTALL}"
    return ROOT / path[len(INSTALL) + 1 :]


def check_command(command: str) -> None:
    """The executable maps to the repo (venv binaries to a package of requirements.txt), and so do its file arguments."""
    argv = shlex.split(command.lstrip("-@:+!"))
    executable, args = argv[0], argv[1:]
    if executable.startswith(VENV_BIN):
        script = executable[len(VENV_BIN) :]
        if script != "python":
            package = script_package(script)
            assert package is not None, f"no installed package provides {script}"
            assert package in requirement_names(), f"{script} comes from {package}, which requirements.txt does not pin"
    else:
        assert repo_path(executable).is_file(), f"{executable}: no such file in the repository"
    for i, arg in enumerate(args):
        if arg.endswith(".py"):
            assert (ROOT / arg).is_file(), f"{command}: {arg} is not in the repository"
        elif re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", arg):  # a WSGI app, module:attribute
            module, attribute = arg.split(":")
            assert attribute in top_level_names(ROOT / (module.replace(".", "/") + ".py")), f"{command}: no {arg}"
        elif i > 0 and args[i - 1] == "--app":
            assert "app" in top_level_names(ROOT / f"{arg}.py"), f"{command}: --app {arg} has no app"


def top_level_names(path: Path) -> set[str]:
    assert path.is_file(), f"{path.relative_to(ROOT)} is not in the repository"
    tree = ast.parse(path.read_text())
    return {
        target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)
    }


def test_every_start_command_exists_in_the_repository(unit):
    _, u = unit
    commands = values(u, "Service", "ExecStartPre") + values(u, "Service", "ExecStart")
    assert commands
    for command in commands:
        check_command(command)


def test_systemd_accepts_the_units(tmp_path):
    """`systemd-analyze verify` on copies that point at this checkout (and this interpreter's virtualenv)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian package: systemd); the structural checks above still ran")
    for name, path in UNITS.items():
        text = path.read_text().replace(VENV_BIN, str(Path(sys.executable).parent) + "/").replace(INSTALL, str(ROOT))
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / p.name) for p in UNITS.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, output


# --- env.example -------------------------------------------------------------------------------------------------


READS = {
    "config.py": r"""(?:os\.environ\.get|_int|_float|_bool)\(\s*["']([A-Z][A-Z0-9_]*)["']""",
    "gunicorn.conf.py": r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]*)["']""",
}
# Environment variables read elsewhere are not our settings: they belong to a library and are set by others.
NOT_SETTINGS = {
    "bot/telegram.py": "the proxy variables requests honours, checked once per HTTP session",
    "webapp/metrics.py": "PROMETHEUS_MULTIPROC_DIR, set by customer-bot-web.service for prometheus-client",
}
NOT_IN_ENV_FILE = {"PROMETHEUS_MULTIPROC_DIR", "RUNTIME_DIRECTORY"}  # the web unit and systemd set them


def variables_read() -> dict[str, str]:
    """Every environment variable the code reads → the file that reads it."""
    found = {}
    for name, pattern in READS.items():
        path = ROOT / name
        if path.exists():
            for variable in re.findall(pattern, path.read_text()):
                found.setdefault(variable, name)
    return {k: v for k, v in found.items() if k not in NOT_IN_ENV_FILE}


def env_example() -> tuple[dict[str, str], list[str]]:
    """The example's variables (commented-out ones too) → value, and its lines."""
    lines = (DEPLOY / "env.example").read_text().splitlines()
    assigned = {}
    for line in lines:
        match = re.fullmatch(r"#?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            assigned[match.group(1)] = match.group(2)
    return assigned, lines


def test_config_py_is_the_one_reader_of_our_settings():
    """Both processes take their settings from `config.Config` (the bot's through `bot.settings.BotSettings`)."""
    sources = [ROOT / "run_bot.py", ROOT / "wsgi.py", ROOT / "models.py", ROOT / "database.py"]
    for package in ("webapp", "bot", "services"):
        sources += sorted((ROOT / package).rglob("*.py"))
    readers = {str(p.relative_to(ROOT)) for p in sources if re.search(r"os\.environ|os\.getenv|getenv\(", p.read_text())}
    assert readers <= set(NOT_SETTINGS), f"read settings in config.py, not in {readers - set(NOT_SETTINGS)}"


def test_config_py_reads_are_found():
    read = variables_read()
    expected = {"DATABASE_URL", "API_TOKEN", "TELEGRAM_BOT_TOKEN", "MAX_BODY_BYTES", "BOT_STALE_SECONDS", "DELIVERY_WORKERS"}
    assert expected <= set(read)
    assert read["POLL_TIMEOUT_SECONDS"] == "config.py"


def test_env_example_documents_every_variable():
    assigned, lines = env_example()
    missing = {var: source for var, source in variables_read().items() if var not in assigned}
    assert not missing, f"add to deploy/env.example, with a comment saying what it does: {missing}"
    for var in variables_read():
        index = next(i for i, line in enumerate(lines) if re.match(rf"#?{var}=", line))
        while index > 0 and re.match(r"#?[A-Z][A-Z0-9_]*=", lines[index - 1]):  # a group sharing one comment
            index -= 1
        above = lines[index - 1] if index > 0 else ""
        assert above.startswith("# ") and not above.startswith("# ---"), f"{var} has no comment explaining it"


def test_env_example_has_no_stale_variables():
    stale = set(env_example()[0]) - set(variables_read())
    assert not stale, f"deploy/env.example documents variables nothing reads: {stale}"


def test_env_example_is_a_valid_environment_file_without_secrets():
    for line in (DEPLOY / "env.example").read_text().splitlines():
        assert not line or line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), line
    assigned, _ = env_example()
    for secret in ("API_TOKEN", "TELEGRAM_BOT_TOKEN", "HORECA_BOT_TOKEN", "WEBHOOK_SECRET", "METRICS_TOKEN"):
        assert assigned[secret] == "", f"{secret} must be left for the admin to fill in"


def gunicorn_settings(env: dict[str, str]) -> dict:
    """gunicorn.conf.py's settings under `env` (its GUNICORN_* and LOG_LEVEL; the rest as is)."""
    saved = dict(os.environ)
    try:
        for var in list(os.environ):
            if var.startswith("GUNICORN_") or var == "LOG_LEVEL":
                del os.environ[var]
        os.environ.update(env)
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_env_example_values_are_the_defaults(monkeypatch):
    """The example says its values are the defaults: taking it as is changes nothing but what must be filled in."""
    from bot.settings import BotSettings
    from config import Config

    assigned, _ = env_example()
    for var in variables_read():
        monkeypatch.delenv(var, raising=False)
    defaults = vars(Config())
    bot_defaults = BotSettings.from_config(Config().as_flask())
    web_defaults = gunicorn_settings({})

    example = {k: v for k, v in assigned.items() if v != ""}
    for var, value in example.items():
        monkeypatch.setenv(var, value)
    assert vars(Config()) == defaults
    assert BotSettings.from_config(Config().as_flask()) == bot_defaults
    configured = gunicorn_settings({k: v for k, v in example.items() if k.startswith("GUNICORN_") or k == "LOG_LEVEL"})
    for setting in ("bind", "workers", "timeout", "graceful_timeout", "accesslog", "loglevel"):
        assert configured[setting] == web_defaults[setting], setting


# --- nginx.conf: the front, its limits the app's ----------------------------------------------------------------

NGINX_CONF = DEPLOY / "nginx.conf"


def nginx_directives() -> list[tuple[str, list[str]]]:
    """(name, arguments) of every simple directive, in order (comments and block openers left out)."""
    found = []
    for raw in NGINX_CONF.read_text().splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("location") else raw.strip()
        for statement in re.findall(r"([a-z_]+)\s+([^;{}]*?);", line):
            name, args = statement
            found.append((name, shlex.split(args) if "'" not in args else [args]))
    return found


def nginx_one(name: str) -> list[str]:
    found = [args for n, args in nginx_directives() if n == name]
    assert len(found) == 1, f"nginx.conf: {name} should be set once, found {found}"
    return found[0]


def nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2}[unit.lower()]


def test_nginx_limits_match_the_apps(monkeypatch):
    from gunicorn.config import Config as GunicornConfig

    from config import Config

    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    max_body = Config().MAX_CONTENT_LENGTH
    assert nginx_size(nginx_one("client_max_body_size")[0]) == max_body  # bigger: 413 from nginx, as from the app
    assert nginx_size(nginx_one("client_body_buffer_size")[0]) == max_body  # every accepted body stays in memory
    assert f"larger than {max_body} bytes" in NGINX_CONF.read_text()

    # A request line (with its CRLF) and each header line must fit one large buffer: nginx answers 414/431 for
    # exactly what Gunicorn's limit_request_line refuses, and is stricter than its limit_request_field_size.
    web = gunicorn_settings({})
    defaults = GunicornConfig()
    line_limit = web.get("limit_request_line", defaults.limit_request_line)
    field_limit = web.get("limit_request_field_size", defaults.limit_request_field_size)
    count, size = nginx_one("large_client_header_buffers")
    assert nginx_size(size) == line_limit + 2 and line_limit <= field_limit
    assert f"longer than {line_limit} bytes" in NGINX_CONF.read_text()
    # nginx forwards only the fields it sets: far fewer than limit_request_fields.
    assert nginx_one("proxy_pass_request_headers") == ["off"]
    forwarded = [args[0] for n, args in nginx_directives() if n == "proxy_set_header"]
    assert len(forwarded) + 2 < web.get("limit_request_fields", defaults.limit_request_fields)  # + Connection, Content-Length

    # nginx waits for the app longer than Gunicorn lets a request run.
    assert seconds(nginx_one("proxy_read_timeout")[0]) > web["timeout"]


def test_nginx_proxies_to_gunicorns_bind_and_gunicorn_trusts_only_it():
    web = gunicorn_settings({})
    assert nginx_one("proxy_pass") == [f"http://{web['bind']}"]
    host = web["bind"].rpartition(":")[0]
    assert host == "127.0.0.1", "Gunicorn is never exposed directly"
    assert web["forwarded_allow_ips"] == host
    headers = {args[0]: args[1] for n, args in nginx_directives() if n == "proxy_set_header"}
    assert headers["X-Forwarded-For"] == "$remote_addr" and headers["X-Forwarded-Proto"] == "$scheme"
    assert nginx_one("proxy_request_buffering") == ["on"] and nginx_one("proxy_buffering") == ["on"]
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout", "keepalive_timeout"):
        assert 1 <= seconds(nginx_one(timeout)[0]) <= 60, timeout


def test_nginx_forwards_every_header_the_app_reads():
    """nginx passes only the fields it sets (proxy_pass_request_headers off): a header the app starts reading
    must be added there too."""
    forwarded = {args[0].lower() for n, args in nginx_directives() if n == "proxy_set_header"}
    read = set()
    for path in sorted((ROOT / "webapp").rglob("*.py")):
        text = path.read_text()
        read |= {m.replace("_", "-").lower() for m in re.findall(r"""["']HTTP_([A-Z0-9_]+)["']""", text)}
        read |= {m.lower() for m in re.findall(r"""request\.headers(?:\.get\(|\[)\s*["']([A-Za-z0-9-]+)["']""", text)}
        if re.search(r"request\.(content_type|mimetype|is_json|get_json|json)\b", text):
            read.add("content-type")
    assert "authorization" in read
    assert read <= forwarded, f"add proxy_set_header lines to deploy/nginx.conf for {read - forwarded}"


def test_nginx_answers_its_own_errors_with_json():
    text = NGINX_CONF.read_text()
    pages = {}
    for args in (args for n, args in nginx_directives() if n == "error_page"):
        *codes, target = args
        overwrite = next((int(c[1:]) for c in codes if c.startswith("=")), None)
        for code in codes:
            if not code.startswith("="):
                pages[int(code)] = (overwrite or int(code), target)
    assert {400, 405, 408, 413, 414, 494, 500, 502, 503, 504} <= set(pages)
    for code, (status, target) in pages.items():
        match = re.search(rf"location = {re.escape(target)} {{ internal; return (\d+) '(.*)\\n'; }}", text)
        assert match, f"error_page {code}: no internal location {target} returning JSON"
        assert int(match.group(1)) == status, f"error_page {code}: {target} answers {match.group(1)}"
        body = json.loads(match.group(2))
        assert set(body) == {"error", "message"} and body["error"] and body["message"]
    assert nginx_one("default_type") == ["application/json"]


def test_nginx_accepts_the_file(tmp_path):
    """`nginx -t` on the file with its ports and directories moved under tmp_path (as the e2e test runs it)."""
    from tests.support import edge

    binary = edge.nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed here (Debian package: nginx; .ci/run installs it); the checks above still ran")
    for sub in ("temp", "logs"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(edge.nginx_config(edge.free_port(), edge.free_port(), tmp_path))
    result = subprocess.run(
        [binary, "-t", "-q", "-e", "stderr", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_template_unit_is_the_bot_unit_for_an_instance():
    """customer-bot-bot@.service runs the same process with the same settings; only its names carry the instance."""
    bot, template = parse_unit(UNITS["bot"]), parse_unit(UNITS["bot@"])
    differ = {"Description", "SyslogIdentifier"}
    for section in bot:
        assert [kv for kv in bot[section] if kv[0] not in differ] == [kv for kv in template[section] if kv[0] not in differ]
    assert "%i" in one(template, "Unit", "Description") and one(template, "Service", "SyslogIdentifier") == "customer-bot-bot@%i"
