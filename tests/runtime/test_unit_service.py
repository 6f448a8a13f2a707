"""Issue 15 §4: the least-privilege service unit (ADR 0036).

The unit is measured with the real ``systemd-analyze`` (``security --offline=yes`` and
``verify``, both work without a running systemd); what the sandbox needs (namespaces, system
calls) is derived from the sandbox's own code, not listed here. No systemd runs in this
container (PID 1 is not systemd), so the unit itself is never started: the sandbox under the
unit's restrictions is exercised in ``test_unit_sandbox.py``.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from tests.conftest import REPO
from typer.testing import CliRunner

from kontur.cli import app
from kontur.config import load_config
from kontur.errors import ConfigError
from kontur.runtime.unit import (
    EXPOSURE_GOAL,
    SANDBOX_NAMESPACES,
    SiteFacts,
    UnitOptions,
    capabilities_of,
    render_unit,
)

SANDBOX = REPO / "src" / "kontur" / "worker" / "sandbox"
EXAMPLE_SITE = REPO / "deploy" / "site.example.yaml"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="needs systemd-analyze (systemd)")

SITE = PurePosixPath("/etc/kontur/site.yaml")
#: The unit as shipped, and the variants an operator can ask for.
VARIANTS: dict[str, tuple[UnitOptions, SiteFacts]] = {
    "default": (UnitOptions(site=SITE), SiteFacts(api_port=8470)),
    "api-off": (UnitOptions(site=SITE), SiteFacts(api_port=None)),
    "api-on-443": (UnitOptions(site=SITE), SiteFacts(api_port=443)),
    "ip-allow": (UnitOptions(site=SITE, ip_allow=("10.0.20.0/24",)), SiteFacts(api_port=8470)),
    "gpu": (
        UnitOptions(site=SITE, devices=(PurePosixPath("/dev/nvidia0"),)),
        SiteFacts(api_port=8470),
    ),
    "openvino": (UnitOptions(site=SITE, unsafe_write_execute=True), SiteFacts(api_port=8470)),
    "elsewhere": (
        UnitOptions(site=SITE, data_dir=PurePosixPath("/srv/kontur"), user="cctv"),
        SiteFacts(api_port=8470),
    ),
}


def settings(text: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every assignment, in order (keys repeat: SystemCallFilter…)."""
    return [
        (k, v)
        for line in text.splitlines()
        if line and line[0] not in "#[" and "=" in line
        for k, _, v in [line.partition("=")]
    ]


def values(text: str, key: str) -> list[str]:
    return [v for k, v in settings(text) if k == key]


def write_unit(tmp: Path, text: str) -> Path:
    path = tmp / "kontur.service"  # systemd-analyze reads the unit type from the suffix
    path.write_text(text)
    return path


def exposure(path: Path) -> tuple[float, str]:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for kontur\.service: ([0-9.]+) (\w+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    return float(found.group(1)), found.group(2)


# --- the score -----------------------------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_scores_ok_at_or_below_the_goal(name: str, tmp_path: Path) -> None:
    score, word = exposure(write_unit(tmp_path, render_unit(*VARIANTS[name])))
    assert word == "OK" and score <= EXPOSURE_GOAL, (name, score, word)


@needs_analyze
def test_the_shipped_unit_scores_1_9(tmp_path: Path) -> None:
    """The measured value, so that a regression of one tenth shows (ADR 0036's table)."""
    score, word = exposure(REPO / "deploy" / "kontur.service")
    assert (score, word) == (1.9, "OK")


@needs_analyze
def test_the_score_falls_when_hardening_is_removed(tmp_path: Path) -> None:
    """The parser reads the real score: strip the filter and the privilege lines, it rises."""
    text = render_unit(*VARIANTS["default"])
    weak = "\n".join(
        line
        for line in text.splitlines()
        if not line.startswith(("SystemCallFilter=", "CapabilityBoundingSet=", "PrivateUsers="))
    )
    assert exposure(write_unit(tmp_path, weak))[0] > EXPOSURE_GOAL


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    """``verify`` runs offline; it checks that ExecStart's program exists, so point it at ours."""
    kontur = PurePosixPath(Path(sys.executable).with_name("kontur"))
    text = render_unit(UnitOptions(site=SITE, kontur=kontur), SiteFacts(api_port=8470))
    proc = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", str(write_unit(tmp_path, text))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and "kontur.service" not in proc.stderr, proc.stderr


# --- capabilities ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_capability_in_the_bounding_set_has_a_justification(name: str) -> None:
    text = render_unit(*VARIANTS[name])
    bounding = " ".join(values(text, "CapabilityBoundingSet")).split()
    ambient = " ".join(values(text, "AmbientCapabilities")).split()
    assert set(ambient) <= set(bounding)
    for cap in bounding:
        assert re.search(rf"^# {cap}: \S.{{20,}}", text, re.M), f"{cap} has no reason in {name}"


def test_the_default_unit_holds_no_capability() -> None:
    text = render_unit(*VARIANTS["default"])
    assert values(text, "CapabilityBoundingSet") == [""]
    assert values(text, "AmbientCapabilities") == [""]
    assert values(text, "PrivateUsers") == ["yes"]


def test_a_low_api_port_is_the_only_reason_for_a_capability() -> None:
    assert capabilities_of(SiteFacts(api_port=None)) == {}
    assert capabilities_of(SiteFacts(api_port=1024)) == {}
    assert list(capabilities_of(SiteFacts(api_port=443))) == ["CAP_NET_BIND_SERVICE"]
    text = render_unit(*VARIANTS["api-on-443"])
    assert values(text, "CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"]
    # a capability held in the unit's own user namespace would not reach the host's netns
    assert values(text, "PrivateUsers") == ["no"]


# --- what the sandbox needs, derived from its code -----------------------------------------

#: ``CLONE_NEW*`` flag -> systemd's RestrictNamespaces= name.
_NS_NAMES = {
    "CLONE_NEWUSER": "user",
    "CLONE_NEWNET": "net",
    "CLONE_NEWNS": "mnt",
    "CLONE_NEWPID": "pid",
    "CLONE_NEWIPC": "ipc",
    "CLONE_NEWUTS": "uts",
    "CLONE_NEWCGROUP": "cgroup",
}
#: The modules :func:`kontur.worker.sandbox.enter` runs (probe, measure, describe are the
#: supervisor's and the tests' side).
_ENTER_PATH = ("__init__.py", "netns.py", "scratch.py", "landlock_fs.py", "seccomp.py", "limits.py")
#: glibc wrappers the enter path calls -> the system calls they make (x86_64 and aarch64).
#: Credential and ownership changes are root-only in ``enter`` and the unit refuses root.
_WRAPPERS = {"setrlimit": ("prlimit64",)}
_ROOT_ONLY = {"setresuid", "setresgid", "setgroups", "chown"}


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def sandbox_syscalls() -> set[str]:
    """Every system call the enter path makes: raw ones by name, glibc ones by wrapper."""
    found: set[str] = set()
    for name in _ENTER_PATH:
        tree = ast.parse((SANDBOX / name).read_text())
        for call in _calls(tree):
            callee = _callee(call)
            if callee == "syscall" and call.args and isinstance(call.args[0], ast.Constant):
                found.add(str(call.args[0].value))
            found.update(_WRAPPERS.get(callee, ()))
            assert callee not in _ROOT_ONLY or name in ("limits.py", "__init__.py"), callee
    return found


def sandbox_namespaces() -> set[str]:
    """The namespaces netns.py and scratch.py create (the CLONE_NEW* flags they pass)."""
    found: set[str] = set()
    for name in ("netns.py", "scratch.py"):
        tree = ast.parse((SANDBOX / name).read_text())
        for call in _calls(tree):
            if _callee(call) in ("syscall", "own_user_namespace"):
                for node in ast.walk(call):
                    ident = (
                        node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
                    )
                    if ident in _NS_NAMES:
                        found.add(_NS_NAMES[ident])
            if _callee(call) == "own_user_namespace":  # it adds CLONE_NEWUSER itself
                found.add("user")
    return found


def test_the_derivation_sees_the_sandbox() -> None:
    """Guard the AST walk: it must find the calls ADR 0010 describes, or it proves nothing."""
    calls = sandbox_syscalls()
    assert {"unshare", "mount", "seccomp", "landlock_restrict_self", "capset"} <= calls
    assert sandbox_namespaces() == {"user", "net", "mnt"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_unit_allows_exactly_the_namespaces_the_sandbox_creates(name: str) -> None:
    text = render_unit(*VARIANTS[name])
    assert set(" ".join(values(text, "RestrictNamespaces")).split()) == sandbox_namespaces()
    assert set(SANDBOX_NAMESPACES) == sandbox_namespaces()


def _groups() -> dict[str, set[str]]:
    """systemd's system call groups, as this systemd defines them (expanded)."""
    out = subprocess.run(
        [str(ANALYZE), "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    raw: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            raw[current] = []
        elif line.startswith("    ") and current and not line.strip().startswith("#"):
            raw[current].append(line.split()[0])

    def expand(group: str) -> set[str]:
        names: set[str] = set()
        for item in raw[group]:
            names |= expand(item) if item.startswith("@") else {item}
        return names

    return {g: expand(g) for g in raw}


def effective_filter(text: str, groups: dict[str, set[str]]) -> set[str]:
    """The system calls a unit's SystemCallFilter= lines allow (an allow-list unit)."""
    lines = values(text, "SystemCallFilter")
    assert lines and not lines[0].startswith("~"), "expected an allow-list"
    allowed: set[str] = set()
    for line in lines:
        deny = line.startswith("~")
        for item in line.lstrip("~").split():
            item = item.split(":")[0]
            names = groups[item] if item.startswith("@") else {item}
            allowed = allowed - names if deny else allowed | names
    return allowed


@needs_analyze
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_system_call_of_the_sandbox_passes_the_unit_filter(name: str) -> None:
    groups = _groups()
    allowed = effective_filter(render_unit(*VARIANTS[name]), groups)
    needed = sandbox_syscalls()
    assert needed <= groups["@known"], needed - groups["@known"]  # no misspelt name
    assert not needed - allowed, f"the unit's filter refuses {sorted(needed - allowed)}"
    # and the filter is a real one: what the worker itself refuses is refused here too
    assert {"ptrace", "kexec_load", "init_module", "reboot", "settimeofday"}.isdisjoint(allowed)


# --- the shipped unit and the CLI -------------------------------------------------------------


def test_deploy_unit_is_the_rendered_template() -> None:
    """deploy/kontur.service is what `kontur service unit` gives for the example site."""
    facts = SiteFacts.from_config(load_config(EXAMPLE_SITE))
    expected = render_unit(UnitOptions(site=SITE), facts)
    assert (REPO / "deploy" / "kontur.service").read_text() == expected


def test_the_unit_writes_only_the_data_dir_and_its_runtime_dir() -> None:
    text = render_unit(*VARIANTS["elsewhere"])
    assert values(text, "ReadWritePaths") == ["/srv/kontur"]
    assert values(text, "StateDirectory") == []  # not under /var/lib: the operator makes it
    assert values(text, "RuntimeDirectory") == ["kontur"]
    assert "Environment=TMPDIR=%t/kontur" in text
    assert values(text, "User") == ["cctv"] and values(text, "Group") == ["cctv"]
    default = render_unit(*VARIANTS["default"])
    assert values(default, "StateDirectory") == ["kontur"]
    assert values(default, "ReadWritePaths") == ["/var/lib/kontur"]
    for key, want in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("UMask", "0077")):
        assert values(default, key) == [want], key


def test_the_site_config_adds_the_directories_it_writes_outside_the_data_dir(
    tmp_path: Path,
) -> None:
    """An archive witness on another mount, an absolute action log: writable, each with its
    reason; a relative log stays in the data dir and adds nothing."""
    site = tmp_path / "site.yaml"
    site.write_text(
        EXAMPLE_SITE.read_text().replace("witness: null", "witness: /mnt/witness/kontur.log")
        + "sinks:\n  log: /var/log/kontur/actions.jsonl\n"
    )
    facts = SiteFacts.from_config(load_config(site))
    text = render_unit(UnitOptions(site=SITE), facts)
    assert values(text, "ReadWritePaths") == ["/var/lib/kontur /mnt/witness /var/log/kontur"]
    assert "# /mnt/witness: the site config's archive.witness is written there" in text
    assert "# /var/log/kontur: the site config's sinks.log is written there" in text
    plain = SiteFacts.from_config(load_config(EXAMPLE_SITE))
    assert plain.writes == ()
    inside = SiteFacts(
        api_port=None, writes=(("archive.witness", PurePosixPath("/var/lib/kontur/w")),)
    )
    assert values(render_unit(UnitOptions(site=SITE), inside), "ReadWritePaths") == [
        "/var/lib/kontur"
    ]


@pytest.mark.parametrize(
    ("opts", "fragment"),
    [
        (UnitOptions(site=SITE, user="root"), "--user: expected an unprivileged system account"),
        (UnitOptions(site=SITE, user="0"), "got '0'"),
        (UnitOptions(site=SITE, group="root"), "--group: expected an unprivileged"),
        (UnitOptions(site=PurePosixPath("site.yaml")), "--site: expected an absolute path"),
        (UnitOptions(site=SITE, data_dir=PurePosixPath("/")), "expected a directory of its own"),
        (
            UnitOptions(site=SITE, data_dir=PurePosixPath("/srv/%h")),
            "--data-dir: expected a plain path",
        ),
        (UnitOptions(site=SITE, ip_allow=("any",)), "--ip-allow: expected an address"),
        (
            UnitOptions(site=SITE, devices=(PurePosixPath("/etc/shadow"),)),
            "--device: expected a device node under /dev, got '/etc/shadow'",
        ),
        (UnitOptions(site=SITE, devices=(PurePosixPath("/dev"),)), "expected a device node"),
        (
            UnitOptions(site=SITE, release=PurePosixPath("/opt/rel")),
            "expected exactly one of --pub KEY or --ca CERT",
        ),
    ],
)
def test_bad_options_are_refused(opts: UnitOptions, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        render_unit(opts, SiteFacts(api_port=8470))


def test_write_execute_is_denied_unless_unsafe_is_asked_for() -> None:
    assert values(render_unit(*VARIANTS["default"]), "MemoryDenyWriteExecute") == ["yes"]
    unsafe = render_unit(*VARIANTS["openvino"])
    assert values(unsafe, "MemoryDenyWriteExecute") == ["no"]
    assert "# UNSAFE (--unsafe-write-execute)" in unsafe


def test_the_release_reaches_exec_start() -> None:
    opts = UnitOptions(
        site=SITE, release=PurePosixPath("/opt/rel"), release_pub=PurePosixPath("/etc/k/r.pub")
    )
    (start,) = values(render_unit(opts, SiteFacts(api_port=None)), "ExecStart")
    assert start == (
        "/opt/kontur/bin/kontur run --config /etc/kontur/site.yaml --data-dir /var/lib/kontur "
        "--release /opt/rel --pub /etc/k/r.pub"
    )


def _cli(*args: str | Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["service", "unit", *map(str, args)])
    return r.exit_code, r.stdout, r.stderr


@needs_analyze
def test_cli_writes_the_unit_and_reports_it(tmp_path: Path) -> None:
    out = tmp_path / "kontur.service"
    code, stdout, stderr = _cli("--site", EXAMPLE_SITE, "--out", out, "--json", "-")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["exposure"] <= EXPOSURE_GOAL and report["exposure_rating"] == "OK"
    assert report["capabilities"] == [] and report["namespaces"] == ["user", "net", "mnt"]
    assert report["unit"] == str(out) and f"--config {EXAMPLE_SITE}" in out.read_text()
    assert "exposure 1.9 OK" in stderr


def test_cli_prints_the_unit_on_stdout_by_default() -> None:
    code, stdout, _ = _cli("--site", EXAMPLE_SITE)
    assert code == 0 and stdout.startswith("# kontur as a site service")
    assert values(stdout, "User") == ["kontur"]


def test_cli_warns_when_write_execute_is_allowed() -> None:
    code, stdout, stderr = _cli("--site", EXAMPLE_SITE, "--unsafe-write-execute")
    assert code == 0 and values(stdout, "MemoryDenyWriteExecute") == ["no"]
    assert stderr.startswith("kontur: warning: --unsafe-write-execute")


def test_cli_reads_the_site_for_its_api_port(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text().replace("port: 8470", "port: 443"))
    code, stdout, stderr = _cli("--site", site)
    assert code == 0, stderr
    assert values(stdout, "AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--site", "/nonexistent/site.yaml"], "--site: expected the site config file"),
        (["--site", EXAMPLE_SITE, "--user", "root"], "--user: expected an unprivileged"),
        (["--site", EXAMPLE_SITE, "--json", "-"], "expected at most one of them on stdout"),
        (["--site", EXAMPLE_SITE, "--ip-allow", "10.0.0.300"], "--ip-allow: expected"),
        (["--site", EXAMPLE_SITE, "--out", "/nonexistent/dir/k.service"], "--out /nonexistent"),
    ],
)
def test_cli_errors_are_one_line(args: list[str | Path], fragment: str) -> None:
    code, stdout, stderr = _cli(*args)
    assert code != 0 and stderr.startswith("kontur: error: ") and stderr.count("\n") == 1
    if "--json" in args:  # stdout stays one JSON document, the error's
        assert json.loads(stdout) == {
            "error": stderr[len("kontur: error: ") :].strip(),
            "exit_code": code,
        }
    else:
        assert stdout == ""
    assert fragment in stderr


def test_cli_refuses_a_malformed_site(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("api:\n  port: -1\n")
    code, _, stderr = _cli("--site", site)
    assert code != 0 and stderr.startswith("kontur: error: config") and "api.port" in stderr
