"""Finding and joining a Ray cluster, and checking a request fits it, each failing in one line.

Ray itself would hang on an address nobody answers on and would queue forever a task no node can
take (``num_gpus=2`` on a CPU cluster); the driver checks both before the first node, so a bad
``--ray-address`` or ``--gpus-per-node`` is an ExecutorError at start, not a silent wait.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from ..core.errors import ExecutorError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'autoresearch-jupyter[ray]'"
PROBE_TIMEOUT = 5.0  # seconds for the TCP check of an address
CONNECT_TIMEOUT = 25.0  # seconds for ray.init once the address answers; with the probe, < 30 s


def import_ray() -> Any:
    """The ray module, or an ExecutorError with the pip command."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def running_local_cluster() -> str | None:
    """The GCS address of a Ray cluster started on this machine (``ray start``), if one is up."""
    try:
        from ray._private.services import find_gcs_addresses

        addresses = sorted(find_gcs_addresses())
    except Exception:  # noqa: BLE001 - a private helper; no cluster found is the safe answer
        return None
    for address in addresses:
        if _answers(address):
            return address
    return None


def resolve_address(address: str | None) -> str | None:
    """The address to join: the given one, ``RAY_ADDRESS``, a running local cluster, or None
    (None: start a Ray instance in this process, sized to this machine)."""
    if address and address != "auto":
        return address
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    found = running_local_cluster()
    if found is None and (address == "auto" or env == "auto"):
        raise ExecutorError("--ray-address auto: no Ray cluster is running on this machine "
                            "(start one with `ray start --head`, or leave --ray-address out)")
    return found


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _answers(address: str, timeout: float = PROBE_TIMEOUT) -> bool:
    target = _host_port(address)
    if target is None:
        return True  # not host:port; let Ray interpret it
    try:
        with socket.create_connection(target, timeout=timeout):
            return True
    except OSError:
        return False


def connect(ray: Any, address: str | None, *, timeout: float = CONNECT_TIMEOUT) -> tuple[bool, Any]:
    """Join (or start) Ray; returns (whether this call initialised it, the init context or None).

    An address that does not answer, or answers but is not a Ray cluster, is one ExecutorError
    within ``PROBE_TIMEOUT + timeout`` seconds.
    """
    if ray.is_initialized():  # the user's own ray.init() in this process: use it, leave it up
        return False, None
    if address is not None:
        if _host_port(address) is None and "://" not in address:
            raise ExecutorError(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
        if not _answers(address):
            raise ExecutorError(f"--ray-address {address}: nobody answers there (is the cluster up? "
                                "`ray status --address ...` tells)")
    if address is not None:
        _use_token_if_any()
    outcome: dict[str, Any] = {}

    def init() -> None:
        try:
            kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
            if address is None:  # "local": a new instance even where a stale cluster file lies around
                kwargs["include_dashboard"] = False
            outcome["context"] = ray.init(address=address or "local", **kwargs)
        except Exception as err:  # noqa: BLE001 - anything Ray raises becomes one line below
            outcome["error"] = err

    thread = threading.Thread(target=init, name="autoresearch-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    where = f"at {address}" if address else "on this machine"
    if thread.is_alive():
        raise ExecutorError(f"no Ray cluster answered {where} within {timeout:g} s (--ray-address)")
    if "error" in outcome:
        err = outcome["error"]
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ExecutorError(f"cannot connect to Ray {where}: {first}")
    return True, outcome.get("context")


def _use_token_if_any() -> None:
    """Send the token a cluster started here (``ray start``) requires: Ray turns token auth on
    for a new cluster when ``~/.ray/auth_token`` exists, but not for a driver that joins one."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        quiet = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its "token auth is enabled" warning is not the user's business
        try:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        finally:
            quiet.setLevel(level)
    except Exception:  # noqa: BLE001 - an older Ray without token auth
        logger.debug("no Ray token auth", exc_info=True)


def check_fits(ray: Any, *, cpus: float, gpus: float) -> dict[str, float]:
    """ExecutorError unless some alive node has ``cpus`` CPUs and ``gpus`` GPUs; returns the
    cluster's totals (``{"CPU": .., "GPU": .., "nodes": ..}``)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    sizes = [(float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0))) for n in nodes]
    totals = {"CPU": sum(c for c, _ in sizes), "GPU": sum(g for _, g in sizes), "nodes": float(len(nodes))}
    if any(c >= cpus and g >= gpus for c, g in sizes):
        return totals
    largest = ", ".join(f"{c:g} CPU/{g:g} GPU" for c, g in sorted(set(sizes), reverse=True)[:4]) or "none"
    raise ExecutorError(
        f"no node of the Ray cluster can run a node with {cpus:g} CPU and {gpus:g} GPU "
        f"(--cpus-per-node/--gpus-per-node; its nodes have: {largest})"
    )
