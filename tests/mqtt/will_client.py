"""Run as a script: an MqttSink connected to 127.0.0.1:PORT that waits to be killed.

``python will_client.py PORT PREFIX``: prints ``connected`` once the broker accepted it, then
sleeps. The last-will test kills it with SIGKILL (no DISCONNECT is ever sent).
"""

from __future__ import annotations

import sys
import time

from kontur.config import MqttConfig
from kontur.mqtt import MqttSink

if __name__ == "__main__":
    port, prefix = int(sys.argv[1]), sys.argv[2]
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=port, prefix=prefix, keepalive_s=5))
    if not sink.wait_connected(60):
        print("not connected:", sink.failures, flush=True)
        sys.exit(1)
    sink.drain(60)
    print("connected", flush=True)
    while True:
        time.sleep(60)
