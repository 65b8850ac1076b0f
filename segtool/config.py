"""Settings from a config file, applied to every command through one mechanism.

Where the settings come from, highest first (as ruff and pip do):

1. the command line;
2. the environment: an option's own variable (`SEGTOOL_LAKE`) or the automatic
   `SEGTOOL_<COMMAND>_<OPTION>` (`SEGTOOL_STAYS_RADIUS=50`,
   `SEGTOOL_INDICES_EXPERIENCED_BOOTSTRAP=200`);
3. the config file: `--config FILE` (or `$SEGTOOL_CONFIG`), else `segtool.toml` in the
   working directory, else `[tool.segtool]` in its `pyproject.toml`;
4. the defaults written in each command.

The file mirrors the command tree: a table per command (`[stays]`, `[indices.experienced]`,
`[ingest.pings]`) whose keys are the command's options and arguments (`min_duration` or
`min-duration` for `--min-duration`); a key at the top level or in a group's table
(`lake = "lake"`, `[indices] seed = 1`) applies to every command below that takes it.
Relative paths are relative to the file's folder. Every key is checked against the
commands and every value converted as the command line would, so an unknown key or a wrong
type is an error naming the key and its file:line before anything runs.

The result is a click `default_map` (`Settings.default_map`): click consults it after the
command line and the environment, before the defaults, for every command alike.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segtool.errors import UsageError

CONFIG_NAME = "segtool.toml"
ENV_CONFIG = "SEGTOOL_CONFIG"
ENV_PREFIX = "SEGTOOL"
# The names a key may also go by (the parameter dataclass's field name, as the issue
# spelled it): (command path, alias) -> parameter name.
ALIASES = {("stays", "radius_m"): "radius"}
# Never read from a file: secrets belong in the environment or a protected key file.
SECRETS = frozenset({"salt", "secret", "key", "password", "token"})
# Tables that configure something other than a command's options.
NON_COMMAND = frozenset({"run"})


class ConfigError(UsageError):
    """A config file that cannot be applied: the message names the key and file:line."""


@dataclass(frozen=True)
class Setting:
    """One value from the file, for one parameter of one command."""

    command: tuple[str, ...]
    param: str
    value: Any
    where: str  # "segtool.toml:12"


@dataclass
class Settings:
    """A parsed and validated config file (or none: `path is None`)."""

    path: Path | None = None
    settings: list[Setting] = field(default_factory=list)
    tables: dict = field(default_factory=dict)  # the raw tables (e.g. `[run]`)

    @property
    def default_map(self) -> dict:
        """Nested {command: {subcommand: {param: value}}}, as click's `default_map`."""
        out: dict = {}
        for s in self.settings:
            node = out
            for name in s.command:
                node = node.setdefault(name, {})
            node[s.param] = s.value
        return out

    def where(self, command: tuple[str, ...], param: str) -> str | None:
        for s in self.settings:
            if s.command == command and s.param == param:
                return s.where
        return None


def find_config(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Path | None:
    """The config file in use: `explicit`, else $SEGTOOL_CONFIG, else ./segtool.toml, else
    ./pyproject.toml when it has a `[tool.segtool]` table; None when there is none."""
    here = cwd or Path()  # relative to the working directory: paths stay as typed
    chosen = explicit or os.environ.get(ENV_CONFIG)
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(
                f"config file {str(path)!r} does not exist (--config / ${ENV_CONFIG})"
            )
        return path
    if (here / CONFIG_NAME).is_file():
        return here / CONFIG_NAME
    py = here / "pyproject.toml"
    if py.is_file() and re.search(r"^\s*\[tool\.segtool[\].]", py.read_text(), re.M):
        return py
    return None


def load_settings(root, explicit: str | os.PathLike | None = None) -> Settings:
    """Find, parse and validate the config file against the click command tree `root`."""
    path = find_config(explicit)
    if path is None:
        return Settings()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    prefix: tuple[str, ...] = ()
    if path.name == "pyproject.toml" and path.name != CONFIG_NAME:
        data = data.get("tool", {}).get("segtool", {})
        prefix = ("tool", "segtool")
    lines = key_lines(text, prefix)
    out = Settings(path=path, tables=data)
    _walk(root, data, (), {}, path, lines, out)
    return out


def key_lines(text: str, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every table header and key of a TOML text, by key path."""
    out: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", s)
        if m:
            table = _split_key(m.group(1))
            out.setdefault(table, n)
            continue
        m = re.match(r"^((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_.\- ])+?)\s*=", s)
        if m:
            out.setdefault(table + _split_key(m.group(1)), n)
    if prefix:
        out = {k[len(prefix) :]: v for k, v in out.items() if k[: len(prefix)] == prefix}
    return out


def _split_key(key: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([^.\s]+)", key)
    return tuple(next(p for p in groups if p) for groups in parts)


def _where(path: Path, lines: dict, keys: tuple[str, ...]) -> str:
    line = lines.get(keys)
    return f"{path}:{line}" if line else str(path)


def _is_group(command) -> bool:
    return hasattr(command, "commands")


def _walk(command, table: dict, cpath: tuple, inherited: dict, path, lines, out) -> None:
    """Check `table` against `command` (a group or a command) and collect its settings.

    `inherited` holds {param: (value, keys)} from the enclosing tables, applied to every
    command below that takes that parameter."""
    if _is_group(command):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        subtables = {k: v for k, v in table.items() if isinstance(v, dict)}
        scope = {**inherited, **{_norm(k): (v, cpath + (k,)) for k, v in scalars.items()}}
        tables: dict[str, dict] = {}
        for key, sub in subtables.items():
            if not cpath and key in NON_COMMAND and key not in command.commands:
                continue
            name = key if key in command.commands else key.replace("_", "-")
            if name not in command.commands:
                known = ", ".join(sorted(command.commands))
                raise ConfigError(
                    f"unknown table [{'.'.join(cpath + (key,))}] in {_where(path, lines, cpath + (key,))}: "
                    f"{'segtool' if not cpath else 'segtool ' + ' '.join(cpath)} has no command {key!r}",
                    hint=f"commands: {known}",
                )
            tables[name] = sub
        if scope or tables:  # every command below, with a table or not, takes scope's keys
            for name, sub in command.commands.items():
                _walk(sub, tables.get(name, {}), cpath + (name,), scope, path, lines, out)
        for key, (_, keys) in scope.items():
            if key in inherited:
                continue  # checked where it was written
            if not _anywhere(command, key):
                raise ConfigError(
                    f"unknown key {'.'.join(keys)!r} in {_where(path, lines, keys)}: no command "
                    f"{'of segtool ' + ' '.join(cpath) + ' ' if cpath else ''}takes it"
                )
        return
    params = {p.name: p for p in command.params if p.name and p.expose_value}
    for key, (value, keys) in inherited.items():
        if key in params:
            out.settings.append(_setting(command, cpath, params[key], value, keys, path, lines))
    for key, value in table.items():
        keys = cpath + (key,)
        name = ALIASES.get((" ".join(cpath), key), _norm(key))
        if name in SECRETS:
            raise ConfigError(
                f"{'.'.join(keys)!r} in {_where(path, lines, keys)}: a secret does not belong in "
                "a config file",
                hint="set SEGTOOL_SALT in the environment or pass --salt-file",
            )
        if name not in params or isinstance(value, dict):
            known = ", ".join(sorted(params))
            raise ConfigError(
                f"unknown key {'.'.join(keys)!r} in {_where(path, lines, keys)}: "
                f"`segtool {' '.join(cpath)}` has no option {key!r}",
                hint=f"its options: {known}",
            )
        out.settings = [s for s in out.settings if not (s.command == cpath and s.param == name)]
        out.settings.append(_setting(command, cpath, params[name], value, keys, path, lines))


def _anywhere(command, name: str) -> bool:
    if _is_group(command):
        return any(_anywhere(c, name) for c in command.commands.values())
    return any(p.name == name for p in command.params)


def _norm(key: str) -> str:
    return key.replace("-", "_")


def _setting(command, cpath, param, value, keys, path: Path, lines) -> Setting:
    """Convert `value` as the command line would (a ConfigError naming the key if it cannot
    be); relative paths become relative to the config file's folder."""
    from typer import _click as click

    where = _where(path, lines, keys)
    annotation = str(getattr(param.type_descriptor, "annotation", ""))
    is_bool = "bool" in annotation
    if isinstance(value, bool) != is_bool and not (is_bool and value is None):
        want = "true or false" if is_bool else f"a {param.bare_type() or 'value'}"
        raise ConfigError(f"{'.'.join(keys)} = {value!r} in {where}: expected {want}")
    many = param.nargs != 1 or getattr(param, "multiple", False)
    if many and not isinstance(value, list):
        value = [value]
    if not many and isinstance(value, list):
        raise ConfigError(
            f"{'.'.join(keys)} = {value!r} in {where}: expected one value, not a list"
        )
    if "Path" in annotation or param.name in ("files", "file", "input"):
        base = path.parent
        value = (
            [_rebase(v, base) for v in value] if isinstance(value, list) else _rebase(value, base)
        )
    ctx = click.Context(command, info_name=cpath[-1] if cpath else "segtool")
    try:
        param.get_runtime_param().coerce(value, param=param, ctx=ctx)
    except click.exceptions.BadParameter as e:
        raise ConfigError(f"{'.'.join(keys)} = {value!r} in {where}: {e.message}") from None
    if type(param).__name__ == "TyperArgument":  # input files: named, so they must exist
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and not any(c in v for c in "*?[") and not Path(v).exists():
                raise ConfigError(f"{'.'.join(keys)} in {where} names a missing file: {v}")
    return Setting(command=cpath, param=param.name, value=value, where=where)


def _rebase(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(base / value) if str(base) not in ("", ".") else value
    return value


# ---------------------------------------------------------------------------------------
# what `segtool config show` prints


def effective(root, settings: Settings, env: dict | None = None) -> list[dict]:
    """Every parameter of every command with its effective value and where it came from
    (`env VAR`, `file:line` or `default`); secrets are never shown."""
    from typer import _click as click

    env = os.environ if env is None else env
    rows: list[dict] = []

    def visit(command, cpath: tuple) -> None:
        if _is_group(command):
            for name, sub in sorted(command.commands.items()):
                visit(sub, cpath + (name,))
            return
        ctx = click.Context(command, info_name=cpath[-1])
        prefix = "_".join((ENV_PREFIX, *cpath)).upper().replace("-", "_")
        dmap = settings.default_map
        for name in cpath:
            dmap = dmap.get(name, {}) if isinstance(dmap, dict) else {}
        for p in command.params:
            if not p.name or not p.expose_value or p.name in ("help",):
                continue
            envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or [])
            envvars.append(f"{prefix}_{p.name.upper()}")
            var = next((v for v in envvars if env.get(v)), None)
            if var is not None:
                value, source = env[var], f"env {var}"
            elif p.name in dmap:
                value, source = dmap[p.name], settings.where(cpath, p.name) or "config"
            else:
                value, source = p.get_default(ctx, call=True), "default"
            if p.name in SECRETS:
                value = "(hidden)"
            rows.append(
                {
                    "command": " ".join(cpath),
                    "setting": p.name,
                    "value": _show(value),
                    "source": source,
                }
            )

    visit(root, ())
    return rows


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(getattr(value, "value", value))


def apply(ctx, explicit: str | os.PathLike | None = None) -> Settings:
    """Load the settings once for this invocation and hand them to click as the root
    context's `default_map` (so every subcommand sees its own table); kept in `ctx.meta`."""
    settings = load_settings(ctx.find_root().command, explicit)
    ctx.default_map = settings.default_map
    ctx.meta["segtool.settings"] = settings
    return settings


def current(ctx) -> Settings:
    """The settings loaded for this invocation (none when called outside the CLI)."""
    return ctx.find_root().meta.get("segtool.settings") or Settings()
