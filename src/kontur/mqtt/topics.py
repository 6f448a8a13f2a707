"""Topic names under a prefix (Frigate's layout), and Home Assistant's discovery topics.

========================================  =========  ====  ==================================
topic                                     retained   QoS   payload
========================================  =========  ====  ==================================
``<prefix>/available``                    yes        1     ``online`` / ``offline`` (will)
``<prefix>/state``                        yes        1     :class:`StatePayload`
``<prefix>/operator/pending``             yes        1     :class:`PendingPayload`
``<prefix>/stats``                        no         1     :class:`StatsPayload`
``<prefix>/events``                       no         1     :class:`EventMessage`
``<prefix>/decisions``                    no         1     ``DecisionEvent``
``<prefix>/<camera>/verdict``             no         1     ``GopVerdictEvent``
``<prefix>/<camera>/state``               yes        1     :class:`CameraStatePayload`
``<prefix>/<camera>/alarm``               yes        1     ``ON`` / ``OFF``
``<prefix>/<camera>/tamper``              yes        1     ``ON`` / ``OFF``
``<discovery_prefix>/.../config``         yes        1     :class:`DiscoveryConfig`
========================================  =========  ====  ==================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Topics", "check_level"]

_LEVEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_level(name: str) -> str:
    """``name`` when it is one safe topic level (a camera id); ValueError otherwise.

    Camera ids are validated by the config already; this keeps a wildcard (``+``, ``#``) or
    a ``/`` out of a topic whatever the caller passes.
    """
    if not _LEVEL.fullmatch(name):
        raise ValueError(f"expected a topic level of [A-Za-z0-9_.-]{{1,64}}, got {name[:80]!r}")
    return name


@dataclass(frozen=True)
class Topics:
    """Every topic kontur publishes to, from the prefix and the discovery prefix."""

    prefix: str = "kontur"
    discovery_prefix: str = "homeassistant"

    @property
    def node(self) -> str:
        """The Home Assistant node id: the prefix with ``/`` as ``_``."""
        return self.prefix.replace("/", "_")

    @property
    def available(self) -> str:
        """``online``/``offline``, retained, with the last will."""
        return f"{self.prefix}/available"

    @property
    def state(self) -> str:
        """The degradation state (the most severe of the site and every camera), retained."""
        return f"{self.prefix}/state"

    @property
    def pending(self) -> str:
        """The OPERATOR requests waiting, retained."""
        return f"{self.prefix}/operator/pending"

    @property
    def stats(self) -> str:
        """Periodic figures of the run."""
        return f"{self.prefix}/stats"

    @property
    def events(self) -> str:
        """Frigate-style ``new``/``update``/``end`` messages."""
        return f"{self.prefix}/events"

    @property
    def decisions(self) -> str:
        """Every gate decision, once archived."""
        return f"{self.prefix}/decisions"

    def verdict(self, camera: str) -> str:
        """A camera's failing GOP verdicts."""
        return f"{self.prefix}/{check_level(camera)}/verdict"

    def camera_state(self, camera: str) -> str:
        """A camera's effective degradation state (ADR 0040), retained."""
        return f"{self.prefix}/{check_level(camera)}/state"

    def alarm(self, camera: str) -> str:
        """A camera's alarm binary sensor: ``ON`` while any event on it is open."""
        return f"{self.prefix}/{check_level(camera)}/alarm"

    def tamper(self, camera: str) -> str:
        """A camera's tamper binary sensor: ``ON`` while a camera alarm on it is open."""
        return f"{self.prefix}/{check_level(camera)}/tamper"

    def discovery(self, component: str, object_id: str) -> str:
        """``<discovery_prefix>/<component>/<node>/<object_id>/config``."""
        return f"{self.discovery_prefix}/{component}/{self.node}/{object_id}/config"
