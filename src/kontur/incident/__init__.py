"""Incident playbooks (issue 12 §4, ADR 0029): the request files and the archive's side.

- :mod:`kontur.incident.spool`: how ``kontur incident`` hands a request to the running site
  (``DATA_DIR/run/incidents``, a trust boundary: every entry is hostile until parsed);
- :mod:`kontur.incident.steps`: the ``incident`` records, the facts a playbook reports (the
  camera's last archived GOP, its revocation record) and the verify report file.

The desk that runs the playbooks is the supervisor's (:mod:`kontur.runtime.incidents`); the
command line is :mod:`kontur.runtime.incident_cli`.
"""

from kontur.incident.spool import Refused, drop, take, withdraw
from kontur.incident.steps import INCIDENT_KIND, append_incident, final_record

__all__ = [
    "INCIDENT_KIND",
    "Refused",
    "append_incident",
    "drop",
    "final_record",
    "take",
    "withdraw",
]
