"""kontur's configuration: typed, frozen, and refused when malformed.

:func:`load_config` reads the embedded defaults (``kontur/defaults/kontur.yaml``) and lays a
user file over them (:func:`merge_layers`: mappings merge, lists and scalars replace), so a
file with only ``cameras:`` is a whole config; any problem is a
:class:`~kontur.errors.ConfigError` that names the key, what was expected and what was found.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kontur.errors import ConfigError

__all__ = [
    "ActionConfig",
    "AllowlistConfig",
    "ApiConfig",
    "CameraConfig",
    "Config",
    "DegradationConfig",
    "DriftConfig",
    "DwellCondition",
    "FreshnessConfig",
    "IngestConfig",
    "MotionConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "OperatorConfig",
    "PlacementConfig",
    "PolicyConfig",
    "Profile",
    "ReleaseConfig",
    "SandboxConfig",
    "SinksConfig",
    "SlaConfig",
    "TamperSettings",
    "TimeCheckConfig",
    "VerifierConfig",
    "WebhookConfig",
    "WorkerConfig",
    "ZoneConfig",
    "is_loopback_host",
    "load_config",
    "merge_layers",
]


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Profile(_Cfg):
    """A camera's registered stream profile."""

    codec: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: float = Field(gt=0)


class CameraConfig(_Cfg):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    source: str | None = None
    priority: bool = True
    signing_required: bool = False
    profile: Profile | None = None
    motion_gating: bool = False
    """Run the detector only around motion (``worker.motion``); off: every full frame."""
    critical: bool = False
    """Strict mode: verify before decode. No byte of a GOP reaches the decoder until the GOP's
    Media Signing signature has verified (the paper's decoder-exploitation threat); costs about
    one GOP of latency. Off: decode at once and attach the verdict when the GOP closes."""
    loop: bool = False
    """A file source starts again from its first frame when it ends (test footage standing in
    for a camera under ``kontur run``); frame and GOP numbers and times go on. URLs: ignored."""
    encryption_required: bool = False
    """The camera's stream must be ``rtsps://`` (TLS, checked against the site CA or the pin
    in the inventory, ADR 0037): a plain ``rtsp://`` or other URL source is refused, here and
    again when ingest opens it."""

    @model_validator(mode="after")
    def _encrypted_if_required(self) -> CameraConfig:
        src = self.source or ""
        if self.encryption_required and "://" in src and not src.lower().startswith("rtsps://"):
            raise ValueError(
                f"expected an rtsps:// source (encryption_required: true), got "
                f"{src.partition('://')[0]}://"
            )
        return self


#: A zone's corner coordinate: normalised to the picture, 0 (left, top) to 1 (right, bottom).
_Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class ZoneConfig(_Cfg):
    id: str
    camera: str = "*"
    polygon: tuple[tuple[_Unit, _Unit], ...] = Field(min_length=3)
    """Corners (x, y), normalised to the picture (0..1)."""


class ActionConfig(_Cfg):
    critical: bool
    restricted_alternative: str | None = None
    two_person: bool = False
    """Four eyes: an OPERATOR request for this action needs two different operators to
    confirm it (issue 11 §6); one rejection is enough to refuse it."""


class DwellCondition(_Cfg):
    type: Literal["dwell"]
    zone: str
    classes: tuple[str, ...] = Field(min_length=1)
    min_seconds: float = Field(gt=0)


class PolicyConfig(_Cfg):
    rule: str
    when: DwellCondition
    action: str


class WebhookConfig(_Cfg):
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=2.0, gt=0, le=30)
    secret_env: str | None = None
    """Name of the environment variable holding the HMAC-SHA256 key for X-Kontur-Signature."""
    unsafe_plain_http: bool = False
    """Allow an ``http://`` URL (loopback tests, a receiver behind a local TLS proxy). Off by
    default: events then travel in clear text. On, every start logs a loud warning."""

    @model_validator(mode="after")
    def _https_unless_unsafe(self) -> WebhookConfig:
        if self.url[:7].lower() == "http://" and not self.unsafe_plain_http:
            raise ValueError(
                "expected an https:// webhook URL (or unsafe_plain_http: true), got http://"
            )
        return self


class ReleaseAuditConfig(_Cfg):
    """The floor on a release's robustness audit (``kontur model audit``, ADR 0033), checked
    at start. A release whose own trigger scan flagged it is refused whatever is set here."""

    required: bool = False
    """Refuse a release (a throwaway ``--model`` one too) that carries no audit. Off by
    default: an audit needs footage with ground truth, which not every site has; each start
    with an unaudited release says so in the run's notes."""
    min_rpc: float = Field(default=0.0, ge=0, le=1)
    """The lowest relative performance under corruption (rPC = mPC / clean AP50) accepted;
    above 0 it also requires an audit."""
    max_patch_drop: float | None = Field(default=None, ge=0, le=1)
    """The largest person recall an adversarial patch may take; None: not checked; set, it
    also requires an audit."""


class ReleaseConfig(_Cfg):
    """Which signed model releases this site runs (ADR 0016)."""

    names: tuple[str, ...] = ()
    """Release names a ``--release DIR`` may carry; any other, validly signed or not, is
    refused at start. Empty: the site runs no external release (only the built-in fallback
    or a throwaway ``--model`` release)."""
    audit: ReleaseAuditConfig = ReleaseAuditConfig()

    @model_validator(mode="after")
    def _names_valid(self) -> ReleaseConfig:
        for n in self.names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", n):
                raise ValueError(f"expected release names like yolox-nano, got {n!r}")
        return self


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): traffic that never
    leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MqttTlsConfig(_Cfg):
    """TLS to the MQTT broker (``sinks.mqtt.tls``); ``{}``: the system's trust store."""

    ca: str | None = None
    """PEM file of the CA(s) that sign the broker's certificate; null: the system's store."""
    cert: str | None = None
    key: str | None = None
    """Client certificate and key (PEM), when the broker asks for one; both or neither."""

    @model_validator(mode="after")
    def _cert_and_key(self) -> MqttTlsConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("expected both sinks.mqtt.tls.cert and tls.key, or neither")
        return self


class MqttConfig(_Cfg):
    """The MQTT sink (:mod:`kontur.mqtt`, ADR 0026): Frigate-style topics under ``prefix``."""

    host: str = Field(min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    """null: 8883 with ``tls``, 1883 without."""
    prefix: str = Field(default="kontur", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    """Topic prefix: levels of letters, digits, ``_`` and ``-`` (no wildcard, no empty level)."""
    client_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """null: ``kontur-<prefix>`` (``/`` as ``-``); two kontur on one broker need two."""
    username: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the broker password (never the password)."""
    tls: MqttTlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    queue_max: int = Field(default=10000, ge=1, le=1_000_000)
    """QoS-1 messages held while the broker is away; beyond it they are dropped and counted."""
    stats_every_s: float = Field(default=30.0, ge=1, le=86400)
    discovery: bool = True
    """Publish Home Assistant MQTT discovery configs (retained) under ``discovery_prefix``."""
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_-]+$")
    unsafe_plain_mqtt: bool = False
    """Allow plain TCP (no ``tls``) to a broker off loopback. Off by default: events and the
    password would travel in clear text. On, every start warns loudly."""

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> MqttConfig:
        if self.password_env is not None and self.username is None:
            raise ValueError("expected sinks.mqtt.username with password_env, got none")
        if self.tls is None and not self.unsafe_plain_mqtt and not is_loopback_host(self.host):
            raise ValueError(
                f"expected sinks.mqtt.tls for broker {self.host!r} off loopback "
                "(or unsafe_plain_mqtt: true), got plain TCP"
            )
        return self


class SinksConfig(_Cfg):
    log: str = "actions.jsonl"
    webhook: WebhookConfig | None = None
    mqtt: MqttConfig | None = None


class DriftConfig(_Cfg):
    """``verifier.drift:``: each camera's detection rate and class mix against a rolling
    baseline, in the verifier (issue 13 §3, :mod:`kontur.verifier.drift`)."""

    enabled: bool = True
    step_s: float = Field(default=15.0, gt=0, le=3600)
    """Observed stream time per window: the tests run each time a window closes."""
    window_s: float = Field(default=60.0, gt=0, le=86400)
    """The recent block tested: the shortest shift that can raise the alarm."""
    guard_s: float = Field(default=60.0, ge=0, le=86400)
    """Between the recent block and the baseline: a shift is tested against a baseline that
    has not seen it, for at least this long."""
    baseline_s: float = Field(default=600.0, gt=0, le=7 * 86400)
    """Observed time the rolling baseline holds (learnt first, before any test)."""
    false_alarms_per_day: float = Field(default=0.1, gt=0, le=100)
    """Expected false alarms per camera per day of stream: sets every test's level."""
    quarantine_p: float = Field(default=0.01, gt=0, lt=1)
    """A window whose tests fell below this level never joins the baseline."""
    min_track_s: float = Field(default=0.5, ge=0, le=60)
    """A track counts as a detected object once the worker reported it this long."""
    unsafe_follow_slow_drift: bool = False
    """Drop the test of the rolling baseline against the one learnt first. Off by default:
    without it a shift slow enough to be learnt step by step is never noticed."""

    @model_validator(mode="after")
    def _windows(self) -> DriftConfig:
        if self.window_s < self.step_s or self.baseline_s < 3 * self.window_s:
            raise ValueError(
                f"expected step_s <= window_s <= baseline_s / 3, got step_s {self.step_s}, "
                f"window_s {self.window_s}, baseline_s {self.baseline_s}"
            )
        return self


class VerifierConfig(_Cfg):
    max_speed_heights_per_s: float = Field(default=8.0, gt=0)
    """Box sizes (the larger side: a person's height, a car's length) per second of pts."""
    max_jump_ratio: float = Field(default=2.0, gt=0)
    """Box diagonals the centre may jump per 0.1 s of pts (and in any one observation)."""
    max_area_ratio: float = Field(default=3.0, gt=1)
    """Area ratio a box may grow or shrink by per 0.1 s of pts (off the frame's border)."""
    max_confidence_jump: float = Field(default=0.6, gt=0, le=1)
    frozen_seconds: float = Field(default=3.0, gt=0)
    frozen_mad_threshold: float = Field(default=0.5, ge=0)
    class_groups: tuple[tuple[str, ...], ...] = (
        ("person", "bicycle", "motorcycle"),
        ("car", "truck", "bus", "train"),
    )
    """Classes a small detector confuses: a change within a group is no class change."""
    class_flip_seconds: float = Field(default=0.3, ge=0)
    """How long a track may show a class outside its watched group before it disagrees."""
    phantom_seconds: float = Field(default=0.5, gt=0, le=5)
    """Window over which a moving box needs foreground under it (issue 13 §2)."""
    min_support: float = Field(default=0.1, gt=0, lt=1)
    """Foreground density a box needs above that of its surroundings to count as supported."""
    evasion_seconds: float = Field(default=0.5, gt=0, le=5)
    """How long person-sized moving foreground may stay untracked in a policy zone."""
    min_person_height: float = Field(default=0.12, gt=0, lt=1)
    """Smallest person (fraction of the frame's height) the evasion check looks for (windows
    down to 0.6 of it once it has learnt the camera's perspective from verified people)."""
    drift: DriftConfig = DriftConfig()
    """Detection rate and class mix against a rolling baseline (issue 13 §3)."""


class DegradationConfig(_Cfg):
    recovery_seconds: float = Field(default=3.0, ge=0)
    clock_jump_threshold_s: float = Field(default=2.0, gt=0)
    watchdog_timeout_s: float = Field(default=6.0, gt=0)
    degraded_analysis_stride: int = Field(default=3, ge=1)
    model_check_interval_s: float = Field(default=0.5, gt=0)
    """How often the installed model files are checked: their metadata each time."""
    model_rehash_interval_s: float = Field(default=60.0, gt=0)
    """How often they are read and hashed whole even when their metadata did not change."""
    camera_failing_gops: int = Field(default=3, ge=1)
    """Consecutive failing GOPs (NOT_AUTHENTIC, MISSING, REPLAYED, STALE, KEY_CHANGED, REVOKED,
    DOWNGRADE) of one camera that raise ``camera_untrusted``."""
    anomalous_window: int = Field(default=200, ge=10)
    """Verifier findings over which the disagreement ratio is measured."""
    anomalous_disagree_ratio: float = Field(default=0.6, gt=0, le=1)
    """Disagreement ratio over a full window that raises ``anomalous_results``."""


class FreshnessConfig(_Cfg):
    """Replay and freshness bounds of signed GOPs (:mod:`kontur.ingest.freshness`, ADR 0013)."""

    replay_window: int = Field(default=64, ge=1, le=65536)
    """GOP counters per signing session remembered for replay detection (SRTP-style window)."""
    max_skew_s: float = Field(default=2.0, ge=0, le=3600)
    """How far a GOP's signed capture time may lie ahead of the receiver's trusted clock."""
    max_delay_s: float = Field(default=30.0, gt=0, le=86400)
    """How long after its signed capture time a GOP may arrive."""


class TimeCheckConfig(_Cfg):
    """Signed time over container time (:mod:`kontur.ingest.signedtime`, ADR 0018)."""

    tolerance_s: float = Field(default=0.1, gt=0, le=10)
    """How far a GOP's frame times may stray from its signed capture times, else RETIMED."""
    max_drift: float = Field(default=0.001, ge=0, le=0.1)
    """Drift allowed between the container and the signed clock, in s per signed s."""


class DecoderConfig(_Cfg):
    """``ingest.decoder``: the sandboxed decoder each camera's ingest runs (ADR 0038)."""

    timeout_s: float = Field(default=10.0, gt=0, le=600)
    """The longest the decoder may take to answer for one packet; past it, it is hung: it is
    killed and restarted, and the packet counts as not decoded."""
    max_restarts: int = Field(default=5, ge=0, le=1000)
    """Losses (crash, hang, protocol violation) after which a camera's decoder is not
    restarted: its frames are then not decoded (not analysed); recording goes on."""
    threads: int = Field(default=0, ge=0, le=64)
    """FFmpeg's decoding threads (0: FFmpeg's choice)."""
    unsafe_in_process: bool = False
    """Decode in the ingest process itself, outside any sandbox (kontur before ADR 0038): a
    decoder exploit then owns ingest, which writes the archive and owns frame provenance.
    Off by default; on, the run warns at start."""


class IngestConfig(_Cfg):
    freshness: FreshnessConfig = FreshnessConfig()
    time_check: TimeCheckConfig = TimeCheckConfig()
    decoder: DecoderConfig = DecoderConfig()


class TamperSettings(_Cfg):
    """``tamper:``: the camera tamper and image-quality monitors in ingest (ADR 0030).

    Besides the keys below, any setting of :class:`kontur.tamper.TamperConfig` (``onset_s``,
    ``clear_s``, ``kinds``, the thresholds...) may be given here; :func:`load_config` checks
    them with the monitor's own rules (one line each), and ingest builds the monitor from
    :attr:`monitor`.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    enabled: bool = True
    max_fps: float = Field(default=5.0, gt=0, le=60)
    """Frames a second each camera's monitor analyses at most (decimated by stream time)."""
    on_critical: Literal["operator", "deny"] = "operator"
    """What the gate answers a critical action on a tampered or low-quality camera."""

    @property
    def monitor(self) -> dict[str, Any]:
        """The monitor's own settings (everything but the keys above)."""
        return dict(self.model_extra or {})


class SlaConfig(_Cfg):
    latency_ms_max: float = Field(gt=0)
    throughput_fps_min: float = Field(ge=0)
    accuracy_min: float = Field(ge=0, le=1)


_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9.+_*-]{1,128}$")


class AllowlistConfig(_Cfg):
    """``placement.allowlist:``: the approved inference stack (issue 13 §3,
    :mod:`kontur.placement.allowlist`). Versions are exact, or globs with ``*``."""

    runtimes: dict[str, tuple[str, ...]] = {}
    """Python distribution (``onnxruntime``, ``onnxruntime-gpu``, ``openvino``,
    ``opencv-python-headless``...) → approved versions. One not listed keeps the version found
    at start: a change while the site runs is a mismatch."""
    drivers: dict[str, tuple[str, ...]] = {}
    """Kernel module (``nvidia``, ``intel_vpu``) → approved versions. An accelerator whose
    driver is not listed is never placed on (CPU-first)."""
    check_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """How often the supervisor reads the versions again while the site runs."""

    @model_validator(mode="after")
    def _patterns(self) -> AllowlistConfig:
        for key, table in (("runtimes", self.runtimes), ("drivers", self.drivers)):
            for name, patterns in table.items():
                bad = [p for p in patterns if not _VERSION_PATTERN.match(p)]
                if not patterns or bad:
                    raise ValueError(
                        f"placement.allowlist.{key}.{name}: expected one or more versions of "
                        f"letters, digits, '.+_-' and '*', got {list(patterns)}"
                    )
        return self


class PlacementConfig(_Cfg):
    tie_margin: float = Field(default=0.10, ge=0, le=1)
    sla: SlaConfig
    bench_frames: int = Field(default=12, ge=2, le=500)
    catalogue: str | None = None
    """Path to a threat catalogue YAML; the built-in one (paper Tables 1 and 3) when null."""
    allowlist: AllowlistConfig = AllowlistConfig()
    """Runtime, execution-provider and driver versions the analytics may run on."""


class MotionConfig(_Cfg):
    """Motion gating (:mod:`kontur.worker.motion`) for cameras with ``motion_gating: true``."""

    frame_height: int = Field(default=120, ge=16, le=2160)
    """Rows of the downscaled grey frame that motion is computed on."""
    threshold: int = Field(default=25, ge=1, le=255)
    """Grey-level difference from the background that counts as motion."""
    min_area: float = Field(default=8.0, ge=0)
    """Smallest motion contour kept, in downscaled pixels."""
    frame_alpha: float = Field(default=0.02, gt=0, le=1)
    """Weight of each new frame in the running-average background."""
    full_frame_every: int = Field(default=10, ge=1)
    """Detect on the full frame at least this often (re-finds people standing still)."""
    full_frame_area: float = Field(default=0.7, gt=0, le=1)
    """Motion or crops covering more than this fraction of the frame: detect on all of it."""
    margin: float = Field(default=0.25, ge=0)
    """Each motion box grows by this fraction of its longer side on every side."""
    min_crop: int = Field(default=128, ge=16)
    """Smallest crop side in pixels, so the model sees context."""
    max_regions: int = Field(default=1, ge=1)
    """More crops than this become their union (1: at most one detector call per frame)."""


class SandboxConfig(_Cfg):
    """Limits of the worker's sandbox (:mod:`kontur.worker.sandbox`, ADR 0010)."""

    memory_mb: int | None = Field(default=4096, ge=256)
    """Address-space limit (RLIMIT_AS); null: none (GPU runtimes reserve tens of GiB)."""
    cpu_seconds: int | None = Field(default=86400, ge=1)
    """CPU-time limit (RLIMIT_CPU) over the worker's life; it is restarted when it hits it."""
    max_file_mb: int = Field(default=64, ge=1)
    """Largest file the worker may write (RLIMIT_FSIZE), its stderr log included: past it a
    write fails with EFBIG (SIGXFSZ is ignored)."""
    max_tasks: int = Field(default=256, ge=8)
    """Threads the worker may run (RLIMIT_NPROC = its uid's other tasks + this); it can start
    no process at all (seccomp)."""
    scratch_max_mb: int = Field(default=128, ge=1)
    """Size of the worker's private scratch tmpfs (RAM, not the data disk)."""
    uid: int = Field(default=65534, ge=1)
    gid: int = Field(default=65534, ge=1)
    """The user the worker drops to; a uid of its own makes RLIMIT_NPROC exact."""
    unsafe_allow_partial_isolation: bool = False
    """Run the worker even when the kernel lacks a sandbox mechanism. Off by default: the
    worker refuses to start without full isolation. On, the run warns at start, the summary
    and the archive say what is missing, and ``isolation_partial`` keeps the perimeter
    DEGRADED (critical actions restricted) for the whole run."""


class ArchiveConfig(_Cfg):
    """Signed checkpoints, witness and retention of the archive (ADR 0015)."""

    key: str | None = None
    """The checkpoint key file; null: ``archive.key`` in the data dir (created with it). Put it
    outside the data dir, so that write access there gives no signing power."""
    checkpoint_every_records: int = Field(default=1000, ge=1)
    checkpoint_every_s: float = Field(default=60.0, gt=0)
    """A signed checkpoint after this many records or seconds (whichever first), and at stop."""
    witness: str | None = None
    """An append-only file every checkpoint is also written to (another mount or host)."""
    retention_days: float | None = Field(default=None, gt=0)
    """Segment bytes older than this are removed (a tombstone record each); null: kept."""
    retention_days_per_camera: dict[str, float] = {}
    """Per-camera overrides of ``retention_days``."""


class OperatorConfig(_Cfg):
    """The operator desk: what happens to an OPERATOR decision (issue 11 §6, ADR 0023)."""

    deadline_s: float = Field(default=60.0, gt=0, le=86400)
    """An OPERATOR request nobody answered within this fails safe: the action's
    ``restricted_alternative`` runs, or nothing."""
    max_pending: int = Field(default=1000, ge=1, le=100000)
    """Requests waiting at once; beyond it the oldest fails safe at once (bounded memory)."""


class ApiConfig(_Cfg):
    """The API block (issue 11 §2): its own process, FastAPI on uvicorn."""

    enabled: bool = False
    """Start the API (``kontur run``/``kontur demo`` ``--api`` turn it on too)."""
    bind: str = "127.0.0.1"
    """Address to listen on; anything but loopback requires TLS."""
    port: int = Field(default=8470, ge=0, le=65535)
    """0: the kernel picks a free port (logged and in the summary's ``api.url``)."""
    tls_cert: str | None = None
    tls_key: str | None = None
    """Your certificate and key (PEM). Off loopback without them, a self-signed pair is
    generated into ``DATA_DIR/api-tls/`` at first start and its SHA-256 fingerprint logged."""
    unsafe_plain_http: bool = False
    """Serve plain HTTP off loopback. Off by default: credentials and video would travel in
    clear text. On, every start warns loudly."""
    extraction: dict[str, Any] = {}
    """The query path's quota, PRADA and alarm policy (``POST /v1/detect``, ADR 0031): any
    setting of :class:`kontur.extraction.ExtractionSettings`, with nested ``prada:`` and
    ``image:`` mappings; :func:`load_config` checks them by the defence's own rules."""

    @model_validator(mode="after")
    def _cert_and_key(self) -> ApiConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("expected both api.tls_cert and api.tls_key, or neither")
        return self


class WorkerConfig(_Cfg):
    intra_op_threads: int = Field(default=1, ge=1, le=64)
    """Threads inside one inference call (ONNX Runtime's intra-op pool)."""
    analysis_threads: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    """Threads that analyse frames, each serving its own share of the cameras, so a
    camera's frames stay in order on one thread and the inference calls of different
    cameras run at once. ``auto``: one per camera, at most one per CPU the worker may use."""
    score_threshold: float = Field(default=0.3, gt=0, lt=1)
    nms_threshold: float = Field(default=0.45, gt=0, lt=1)
    motion: MotionConfig = MotionConfig()
    sandbox: SandboxConfig = SandboxConfig()


class Config(_Cfg):
    site: str
    cameras: tuple[CameraConfig, ...] = Field(min_length=1)
    zones: tuple[ZoneConfig, ...] = ()
    actions: dict[str, ActionConfig]
    policies: tuple[PolicyConfig, ...] = ()
    sinks: SinksConfig = SinksConfig()
    verifier: VerifierConfig = VerifierConfig()
    degradation: DegradationConfig = DegradationConfig()
    placement: PlacementConfig
    worker: WorkerConfig = WorkerConfig()
    ingest: IngestConfig = IngestConfig()
    tamper: TamperSettings = TamperSettings()
    release: ReleaseConfig = ReleaseConfig()
    archive: ArchiveConfig = ArchiveConfig()
    operator: OperatorConfig = OperatorConfig()
    api: ApiConfig = ApiConfig()

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        ids = [c.id for c in self.cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"expected unique camera ids, got {ids}")
        zones = {z.id for z in self.zones}
        for p in self.policies:
            if p.when.zone not in zones:
                raise ValueError(
                    f"policy {p.rule!r}: expected a zone among {sorted(zones)}, got {p.when.zone!r}"
                )
            if p.action not in self.actions:
                raise ValueError(
                    f"policy {p.rule!r}: expected an action among {sorted(self.actions)}, "
                    f"got {p.action!r}"
                )
        for name, a in self.actions.items():
            alt = a.restricted_alternative
            if alt is not None and (alt not in self.actions or self.actions[alt].critical):
                raise ValueError(
                    f"action {name!r}: expected restricted_alternative to name a non-critical "
                    f"action, got {alt!r}"
                )
        return self


def _default_text() -> str:
    return resources.files("kontur").joinpath("defaults/kontur.yaml").read_text()


def _read_text(path: Path, where: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config {where}: expected a readable YAML file, found nothing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {where}: expected a readable YAML file, got {exc}") from None


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping gave one key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key given twice in one mapping (YAML says keys are
    unique; PyYAML keeps the last one, so a second ``enabled:`` further down would silently
    win over the first a reviewer read)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base`: its keys may be overridden here, as YAML means
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable or odd: the schema refuses it later
            if key in seen:
                raise _DuplicateKey(None, None, f"key {key!r} twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse(text: str, where: str) -> dict[str, Any]:
    """One YAML document that must be a mapping; anything else is a one-line ConfigError."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no object tags
    except _DuplicateKey as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"config {where}: expected each key once, got {exc.problem}{at}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"config {where}: expected valid YAML, found a syntax error{at}"
        ) from None
    if not isinstance(raw, dict):
        got = "an empty document" if raw is None else type(raw).__name__
        raise ConfigError(f"config {where}: expected a mapping at top level, got {got}")
    return raw


def merge_layers(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid over ``base``: mappings merge key by key, recursively; anything else in
    ``over`` (a list, a scalar, ``null``) replaces what ``base`` holds there. Neither is changed.

    Lists replace rather than append: ``cameras:`` in a user file is the list of cameras, not
    more cameras after the demo's one.
    """
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_layers(below, value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError, where: str) -> str:
    """The first validation error on one line: the key's path, what was expected and found."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return (
            f"config {where}: key {loc}: expected a known key (README, Configuration "
            "reference), got an unknown one"
        )
    found = err.get("input")
    shown = repr(found) if not isinstance(found, dict) else "a mapping"
    return f"config {where}: key {loc}: {err['msg']} (found {shown[:80]})"


def load_config(path: Path | None = None) -> Config:
    """The embedded defaults with the user's file ``path`` (if any) laid over them, validated.

    Precedence, lowest first: the embedded defaults (``kontur/defaults/kontur.yaml``), the
    config file (:func:`merge_layers`), then the command-line options, which the caller
    applies (``--source`` replaces the first camera's source). Unknown keys are refused with
    their path, before anything runs.
    """
    defaults = _parse(_default_text(), "embedded defaults")
    where = str(path) if path is not None else "embedded defaults"
    raw = (
        defaults if path is None else merge_layers(defaults, _parse(_read_text(path, where), where))
    )
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None
    _check_tamper(config.tamper, where)
    _check_extraction(config.api.extraction, where)
    return config


def _check_tamper(settings: TamperSettings, where: str) -> None:
    """The ``tamper:`` monitor settings, by the monitor's own rules (imported only here: the
    gate and the verifier validate a config too, and must not load image code)."""
    from dataclasses import fields

    from kontur.tamper.config import TamperConfig

    known = {f.name for f in fields(TamperConfig)}
    for key in settings.monitor:
        if key not in known:
            raise ConfigError(
                f"config {where}: key tamper.{key}: expected a known key (README, "
                "Configuration reference), got an unknown one"
            )
    try:
        TamperConfig.from_mapping(settings.monitor)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"config {where}: key {exc}") from None


def _check_extraction(settings: Mapping[str, Any], where: str) -> None:
    """``api.extraction``, by the query path's own rules (imported only here, like tamper's)."""
    from kontur.extraction.defence import ExtractionSettings

    try:
        ExtractionSettings.from_mapping(settings)
    except ValueError as exc:
        raise ConfigError(f"config {where}: key api.{exc}") from None
    except OverflowError as exc:  # an integer too large for a float field
        raise ConfigError(
            f"config {where}: key api.extraction: expected finite numbers, got {exc}"
        ) from None
