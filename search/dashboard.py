"""Talking to a Ray cluster's dashboard (for ``search submit/jobs/logs/stop``): the
address, the token, a quick probe, Ray's job and state clients, and their errors as one
line each (:class:`JobError`, exit code 2).

Token authentication: with ``RAY_AUTH_MODE=token`` the token is read from
``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token`` and sent as
``authorization: Bearer <token>``, as Ray's own clients do. It is passed to Ray's clients
explicitly: they otherwise decide from the environment at the time ``ray`` was imported,
and take their address from ``$RAY_ADDRESS`` over the one given.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 5.0
TOKEN_HELP = ("supply the cluster's token: `export RAY_AUTH_MODE=token`, and put the token "
              "in ~/.ray/auth_token, or point RAY_AUTH_TOKEN_PATH at a file holding it (or "
              "set RAY_AUTH_TOKEN)")


class JobError(Exception):
    """A one-line error about the cluster or the command: exit code 2."""


def resolve_address(address: str | None) -> str:
    """``--address``, else ``$RAY_ADDRESS`` when it is an http(s) URL."""
    if not address:
        env = os.environ.get("RAY_ADDRESS", "")
        if not env.startswith(("http://", "https://")):
            raise JobError("--address is required (the Ray dashboard, e.g. "
                           "http://HEAD:8265), or set RAY_ADDRESS to that URL")
        address = env
    if not address.startswith(("http://", "https://")) or not urlparse(address).hostname:
        raise JobError(f"--address {address}: must be the Ray dashboard's URL, e.g. "
                       f"http://HEAD:8265 (not the GCS address HEAD:6379)")
    return address.rstrip("/")


def is_local(address: str) -> bool:
    host = urlparse(address).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def auth_headers() -> dict:
    """``{"authorization": "Bearer <token>"}`` when ``RAY_AUTH_MODE=token`` and a token is
    found (RAY_AUTH_TOKEN, then RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token), else {}."""
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    for f in (os.environ.get("RAY_AUTH_TOKEN_PATH"), "~/.ray/auth_token"):
        if token or not f:
            continue
        try:
            token = Path(f).expanduser().read_text().strip()
        except OSError:
            pass
    return {"authorization": f"Bearer {token}"} if token else {}


def _auth_error(address: str, status: int, body: str) -> JobError:
    if status == 401:
        why = ("RAY_AUTH_MODE=token is set but no token was found"
               if os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
               else "no token was sent (RAY_AUTH_MODE is not 'token')")
        return JobError(f"the Ray dashboard at {address} wants a token (401): {why}; "
                        f"{TOKEN_HELP}")
    return JobError(f"the Ray dashboard at {address} rejected the token (403: "
                    f"{body.strip()[:120]}); {TOKEN_HELP}")


def _reason(e: Exception, timeout: float) -> str:
    import requests
    if isinstance(e, requests.Timeout):
        return f"no answer within {timeout:g} s"
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(e))
    return m.group(1).strip() if m else (str(e).splitlines() or [type(e).__name__])[0][:200]


def _unreachable(address: str, reason: str) -> JobError:
    return JobError(f"cannot reach the Ray dashboard at {address}: {reason}; is the cluster "
                    f"up (`ray status` on its head)? The dashboard listens on port 8265 "
                    f"(other machines need `ray start --head --dashboard-host 0.0.0.0` or an "
                    f"SSH tunnel: ssh -L 8265:localhost:8265 HEAD)")


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> str:
    """GET ``<address>/api/version`` within ``timeout``: the cluster's Ray version, or a
    JobError (unreachable, token missing or wrong, not a Ray dashboard)."""
    import requests
    try:
        r = requests.get(f"{address}/api/version", headers=auth_headers(), timeout=timeout)
    except requests.RequestException as e:
        raise _unreachable(address, _reason(e, timeout)) from None
    if r.status_code in (401, 403):
        raise _auth_error(address, r.status_code, r.text)
    try:
        r.raise_for_status()
        return str(r.json()["ray_version"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        raise JobError(f"{address} answered /api/version with HTTP {r.status_code}, not a "
                       f"Ray dashboard's version; is this the dashboard's port (8265)?") \
            from None


@contextmanager
def _env_address_ignored():
    """Ray's clients replace their address by $RAY_API_SERVER_ADDRESS / $RAY_ADDRESS; the
    --address given here must win."""
    saved = {k: os.environ.pop(k) for k in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
             if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _errors(address: str, job: str | None = None):
    """Ray's client exceptions -> one-line JobErrors."""
    import requests
    from ray.exceptions import AuthenticationError
    try:
        yield
    except AuthenticationError as e:
        raise _auth_error(address, 401 if "required" in str(e) else 403, str(e)) from None
    except (ConnectionError, requests.RequestException) as e:
        raise _unreachable(address, _reason(e, PROBE_TIMEOUT_S)) from None
    except RuntimeError as e:
        if job and ("404" in str(e) or "does not exist" in str(e)):
            raise JobError(f"no job {job} on the cluster at {address}; list them with "
                           f"`python -m search jobs --address {address}`") from None
        raise JobError(f"the Ray dashboard at {address}: {str(e).strip()[:300]}") from None


def _quiet_ray_logs() -> None:
    """Ray's client logs each packaging step at INFO (and that .venv is skipped, which
    EXCLUDES does anyway); keep its warnings, e.g. a package near the size limit."""
    import logging
    for name, level in (("ray._private.runtime_env.packaging", logging.WARNING),
                        ("ray._private.runtime_env.working_dir", logging.ERROR),
                        ("ray.dashboard.modules.dashboard_sdk", logging.WARNING),
                        ("ray.dashboard.modules.job.sdk", logging.WARNING)):
        logging.getLogger(name).setLevel(level)


def client(address: str):
    """A JobSubmissionClient for ``address`` (probed first) with the token, if any."""
    probe(address)
    from ray.job_submission import JobSubmissionClient
    _quiet_ray_logs()                   # after the import: Ray's modules set INFO on import
    with _env_address_ignored(), _errors(address):
        return JobSubmissionClient(address, headers=auth_headers() or None)


def cluster_nodes(address: str, timeout: int = 10) -> list[dict]:
    """The alive nodes' total resources, through the dashboard's state API."""
    from ray.util.state import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource
    headers = {"Content-Type": "application/json", **auth_headers()}
    with _env_address_ignored(), _errors(address):
        try:
            nodes = StateApiClient(address, headers=headers).list(
                StateResource.NODES, options=ListApiOptions(timeout=timeout, limit=10000),
                raise_on_missing_output=False)
        except Exception as e:     # RayStateApiException, ServerUnavailable
            raise JobError(f"cannot list the nodes of the cluster at {address}: "
                           f"{str(e).splitlines()[0][:200]}") from None

    def get(n, k):
        return n.get(k) if isinstance(n, dict) else getattr(n, k, None)
    return [dict(get(n, "resources_total") or {}) for n in nodes
            if str(get(n, "state")).upper().endswith("ALIVE")]
