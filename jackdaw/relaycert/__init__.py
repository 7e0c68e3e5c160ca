"""The relay's own TLS certificate for RELAY_DOMAIN (the one key the relay owns).

At start a periodic check in each gunicorn worker writes a self-signed placeholder into
RELAY_CERT_DIR when nothing usable is there (so nginx can start), then a durable job obtains a
real certificate through leg 2 — the relay's own key and CSR, an upstream order, DNS-01 through
the configured provider with the propagation check, finalize — writes privkey.pem and then
fullchain.pem atomically and reloads the TLS server. The check repeats every
RELAY_CERT_CHECK_INTERVAL seconds and renews when fewer than RELAY_CERT_RENEW_DAYS remain.
Failures are retried with back-off while the old certificate keeps being served.
"""

from jackdaw.relaycert.files import CertStatus, CertStore
from jackdaw.relaycert.job import JobState, RelayCertificate, RelayCertJob, job_state, reload_server, standalone

__all__ = ["CertStatus", "CertStore", "JobState", "RelayCertJob", "RelayCertificate",
           "job_state", "reload_server", "standalone"]
