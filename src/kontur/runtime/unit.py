"""The least-privilege systemd unit for ``kontur run`` (ADR 0036), rendered from a template.

Pure core, no I/O but reading the packaged template: :func:`render_unit` fills
``kontur/defaults/kontur.service.tmpl`` from :class:`UnitOptions` and the facts of the site
config that change what the unit must allow (:class:`SiteFacts`). The shell
(:mod:`kontur.runtime.unit_cli`) reads the site config, writes the unit and measures it.

Order of steps (:func:`render_unit`): check the options (an unprivileged user, absolute paths
without characters systemd would read as syntax); work out the capabilities (none, unless the
site binds the API below port 1024), the devices (none: ``PrivateDevices``, unless device nodes
are named for an accelerator), the writable paths (the data dir, and the directories the site
config writes in outside it), the IP allow-list (none, unless given); fill the template and
check that no placeholder is left.

What the sandboxes need is stated here once, next to where it comes from:
:data:`SANDBOX_NAMESPACES` (``kontur.worker.sandbox.netns`` and ``.scratch``) and
:data:`SANDBOX_SYSCALLS` (``.landlock_fs``, ``.seccomp``, ``.scratch``: the calls systemd's
``@system-service`` set lacks). The tests derive both again from the sandbox's code.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from kontur.config import Config
from kontur.errors import ConfigError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_KONTUR",
    "EXPOSURE_GOAL",
    "SANDBOX_NAMESPACES",
    "SANDBOX_SYSCALLS",
    "SiteFacts",
    "UnitOptions",
    "capabilities_of",
    "measure_exposure",
    "render_unit",
]

#: ``systemd-analyze security`` exposure the unit must not exceed ("OK" ends at 4.9; issue 15).
EXPOSURE_GOAL = 2.5
#: Namespaces the worker sandbox creates as a non-root user, in systemd's names: ``user``
#: (``netns.own_user_namespace``), ``net`` (``netns.isolate``), ``mnt`` (``scratch``).
SANDBOX_NAMESPACES = ("user", "net", "mnt")
#: System calls the worker sandbox makes that ``@system-service`` does not hold (systemd 252):
#: Landlock (``landlock_fs``), the filter itself (``seccomp``), the scratch tmpfs (``scratch``).
SANDBOX_SYSCALLS = (
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "seccomp",
    "mount",
)
_TEMPLATE = "kontur.service.tmpl"
#: A user or group name systemd and useradd both accept (no leading digit or dash).
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
#: Characters that mean something in a unit file (specifiers, quoting, comments, line breaks).
_UNIT_SYNTAX = re.compile(r"[\s%$\\\"';#]")
_ROOT_NAMES = ("root", "0")
DEFAULT_DATA_DIR = PurePosixPath("/var/lib/kontur")
DEFAULT_KONTUR = PurePosixPath("/opt/kontur/bin/kontur")


@dataclass(frozen=True)
class SiteFacts:
    """What the site config says that changes the unit: the port the supervisor binds, and
    the files it writes outside the data dir."""

    api_port: int | None
    """The API's port when the API is enabled; None when it is off (or 0: any free port)."""
    writes: tuple[tuple[str, PurePosixPath], ...] = ()
    """``(config key, directory)`` the site writes in outside the data dir: the directory of
    ``archive.witness`` (an append-only copy of every checkpoint, kept on another mount) and of
    an absolute ``sinks.log``."""

    @classmethod
    def from_config(cls, config: Config) -> SiteFacts:
        """The facts of a loaded site config."""
        port = config.api.port if config.api.enabled and config.api.port else None
        writes = []
        if config.archive.witness:
            writes.append(("archive.witness", PurePosixPath(config.archive.witness).parent))
        if PurePosixPath(config.sinks.log).is_absolute():
            writes.append(("sinks.log", PurePosixPath(config.sinks.log).parent))
        return cls(api_port=port, writes=tuple(writes))


@dataclass(frozen=True)
class UnitOptions:
    """Where things are on the target host, and what the operator grants beyond the default."""

    site: PurePosixPath
    data_dir: PurePosixPath = DEFAULT_DATA_DIR
    user: str = "kontur"
    group: str | None = None
    kontur: PurePosixPath = DEFAULT_KONTUR
    release: PurePosixPath | None = None
    release_pub: PurePosixPath | None = None
    release_ca: PurePosixPath | None = None
    ip_allow: tuple[str, ...] = ()
    """Networks the unit may exchange packets with besides localhost (cameras, API clients,
    sinks); empty: no IP allow-list (ADR 0036 says why that is the default)."""
    devices: tuple[PurePosixPath, ...] = ()
    """Device nodes for an accelerator worker (``/dev/nvidia0``…); empty: PrivateDevices."""
    unsafe_write_execute: bool = False
    """Allow memory both writable and executable: an OpenVINO release needs it (its CPU plugin
    generates code at run time). Off: ``MemoryDenyWriteExecute=yes``."""
    generated_from: str = ""


def _path(name: str, value: PurePosixPath) -> str:
    text = str(value)
    if not value.is_absolute():
        raise ConfigError(f"{name}: expected an absolute path on the target host, got {text!r}")
    if _UNIT_SYNTAX.search(text) or ".." in value.parts:
        raise ConfigError(
            f"{name}: expected a plain path (no spaces, quotes, %, $, ;, # or ..), got {text!r}"
        )
    return text


def _device(value: PurePosixPath) -> str:
    """A device node under ``/dev`` (``DeviceAllow=`` of anything else, ``/etc/shadow``,
    means nothing to systemd, and says the wrong thing to whoever reads the unit)."""
    text = _path("--device", value)
    if value.parts[:2] != ("/", "dev") or len(value.parts) < 3:
        raise ConfigError(f"--device: expected a device node under /dev, got {text!r}")
    return text


def _check_user(name: str, value: str) -> str:
    if value in _ROOT_NAMES:
        raise ConfigError(
            f"{name}: expected an unprivileged system account, got {value!r} (the unit never "
            "runs kontur as root: ADR 0036)"
        )
    if not _NAME.fullmatch(value):
        raise ConfigError(f"{name}: expected an account name like 'kontur', got {value!r}")
    return value


def capabilities_of(facts: SiteFacts) -> dict[str, str]:
    """The capabilities the unit grants, each with the reason the unit's comment gives."""
    caps: dict[str, str] = {}
    if facts.api_port is not None and facts.api_port < 1024:
        caps["CAP_NET_BIND_SERVICE"] = (
            f"the supervisor binds the API's socket to port {facts.api_port} (api.port < 1024); "
            "a port of 1024 or more needs no capability"
        )
    return caps


def _capability_lines(caps: dict[str, str]) -> str:
    if not caps:
        return "# Capabilities: none.\nCapabilityBoundingSet=\nAmbientCapabilities="
    lines = [
        line
        for cap, why in sorted(caps.items())
        for line in textwrap.wrap(
            f"{cap}: {why}", 98, initial_indent="# ", subsequent_indent="#   "
        )
    ]
    names = " ".join(sorted(caps))
    lines += [f"CapabilityBoundingSet={names}", f"AmbientCapabilities={names}"]
    return "\n".join(lines)


def _private_users_lines(caps: dict[str, str], user: str) -> str:
    if caps:
        return (
            "# no user namespace of the unit's own: a capability held there would not reach the\n"
            "# host's network namespace, where the API's socket is bound\nPrivateUsers=no"
        )
    return (
        f"# a user namespace of the unit's own: only root and {user} are mapped; the sandbox's\n"
        "# nested one still works\nPrivateUsers=yes"
    )


def _write_execute_lines(unsafe: bool) -> str:
    if unsafe:
        return (
            "# UNSAFE (--unsafe-write-execute): memory may be writable and executable at once,\n"
            "# for OpenVINO's CPU plugin, which generates code at run time (\"can't protect\")\n"
            "MemoryDenyWriteExecute=no"
        )
    return (
        "# numpy, OpenCV and ONNX Runtime (YOLOX, in the worker's sandbox) run under systemd's\n"
        "# write-xor-execute rules; OpenVINO does not (tests/runtime/test_unit_sandbox.py)\n"
        "MemoryDenyWriteExecute=yes"
    )


def _device_lines(devices: tuple[PurePosixPath, ...]) -> str:
    if not devices:
        return "PrivateDevices=yes\nDevicePolicy=closed\n"
    lines = [
        "# the accelerator's device nodes (worker.sandbox devices): the worker opens them, so no",
        "# PrivateDevices; every other device stays closed",
        "PrivateDevices=no",
        "DevicePolicy=closed",
    ]
    lines += [f"DeviceAllow={_device(d)} rw" for d in devices]
    return "\n".join(lines) + "\n"


def _ip_lines(allow: tuple[str, ...]) -> str:
    if not allow:
        return (
            "# no IP allow-list by default: the cameras, API clients and sinks are the site's;\n"
            "# name them with `kontur service unit --ip-allow CIDR` to deny every other address\n"
        )
    nets = []
    for cidr in allow:
        try:
            nets.append(str(ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            raise ConfigError(
                f"--ip-allow: expected an address or network (10.0.20.0/24), got {cidr!r}"
            ) from None
    return (
        "# packets to or from any other address are dropped (cameras, API clients, sinks)\n"
        f"IPAddressDeny=any\nIPAddressAllow=localhost {' '.join(nets)}\n"
    )


def _exec_start(opts: UnitOptions, site: str, data_dir: str) -> str:
    argv = [_path("--kontur", opts.kontur), "run", "--config", site, "--data-dir", data_dir]
    if (opts.release_pub or opts.release_ca) and opts.release is None:
        raise ConfigError("--release: expected a release dir with --pub or --ca, got none")
    if opts.release is not None:
        if (opts.release_pub is None) == (opts.release_ca is None):
            raise ConfigError("--release: expected exactly one of --pub KEY or --ca CERT")
        argv += ["--release", _path("--release", opts.release)]
        if opts.release_pub is not None:
            argv += ["--pub", _path("--pub", opts.release_pub)]
        if opts.release_ca is not None:
            argv += ["--ca", _path("--ca", opts.release_ca)]
    return " ".join(argv)


def _write_paths(data_dir: str, facts: SiteFacts) -> str:
    """``ReadWritePaths=``: the data dir, and each directory the site config writes in."""
    lines, paths = [], [data_dir]
    for key, directory in facts.writes:
        where = _path(key, directory)
        if where == "/":
            raise ConfigError(f"{key}: expected a file in a directory of its own, got one in '/'")
        if where not in paths and not where.startswith(data_dir + "/"):
            lines.append(f"# {where}: the site config's {key} is written there")
            paths.append(where)
    return "\n".join([*lines, f"ReadWritePaths={' '.join(paths)}"])


def _state_directory(data_dir: PurePosixPath) -> str:
    """``StateDirectory=`` when the data dir is under /var/lib: systemd creates it, owned by
    the user, mode 0700; elsewhere the operator creates it (ReadWritePaths only)."""
    base = PurePosixPath("/var/lib")
    if data_dir.parent == base or base in data_dir.parents:
        rel = data_dir.relative_to(base)
        return f"StateDirectory={rel}\nStateDirectoryMode=0700\n"
    return ""


def _template() -> str:
    return resources.files("kontur").joinpath(f"defaults/{_TEMPLATE}").read_text(encoding="utf-8")


def render_unit(opts: UnitOptions, facts: SiteFacts) -> str:
    """The unit's text (steps in the module doc); raises ConfigError for a bad option."""
    user = _check_user("--user", opts.user)
    group = _check_user("--group", opts.group or opts.user)
    site, data_dir = _path("--site", opts.site), _path("--data-dir", opts.data_dir)
    if data_dir == "/":
        raise ConfigError("--data-dir: expected a directory of its own, got '/'")
    caps = capabilities_of(facts)
    values = {
        "generated_from": f" ({opts.generated_from})" if opts.generated_from else "",
        "user": user,
        "group": group,
        "site": site,
        "data_dir": data_dir,
        "write_paths": _write_paths(data_dir, facts),
        "exposure_goal": str(EXPOSURE_GOAL),
        "exec_start": _exec_start(opts, site, data_dir),
        "state_directory": _state_directory(opts.data_dir),
        "devices": _device_lines(opts.devices),
        "capabilities": _capability_lines(caps),
        "private_users": _private_users_lines(caps, user),
        "write_execute": _write_execute_lines(opts.unsafe_write_execute),
        "namespaces": " ".join(SANDBOX_NAMESPACES),
        "ip_addresses": _ip_lines(opts.ip_allow),
        "extra_syscalls": " ".join(SANDBOX_SYSCALLS),
    }
    text = _template()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        left = re.findall(r"\{\{(\w+)\}\}", text)
        raise RuntimeError(f"unit template: expected every placeholder filled, left {left}")
    return text


_SCORE = re.compile(r"Overall exposure level for .*?:\s*([0-9]+(?:\.[0-9]+)?)\s+(\w+)")


def measure_exposure(unit_path: Path) -> tuple[float, str] | None:
    """``systemd-analyze security --offline=yes``'s exposure score and its word ("OK"), or
    None where ``systemd-analyze`` is not installed. Raises ConfigError when it rejects the
    unit or prints no score."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None
    proc = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(unit_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = _SCORE.search(proc.stdout + proc.stderr)
    if found is None:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["nothing"]
        raise ConfigError(f"systemd-analyze security: expected an exposure score, got {last[0]}")
    return float(found.group(1)), found.group(2)
