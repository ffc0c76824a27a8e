"""``llmpulse dashboards push``: folder, data source, dashboards and alert rules to a Grafana.

Uses ``grafana-client`` (the maintained successor of grafana-api). Everything is
addressed by uid, so pushing twice changes nothing the second time: the folder is
created if missing, the data source created or updated, dashboards saved with
``overwrite``, alert rules created or updated through the provisioning API.

Example:
    >>> from llmpulse.dashboards.push import clickhouse_datasource, push
    >>> source = clickhouse_datasource("http://llmpulse:pw@clickhouse:8123/llmpulse")
    >>> source["jsonData"]["host"], source["jsonData"]["port"], source["jsonData"]["defaultDatabase"]
    ('clickhouse', 8123, 'llmpulse')
    >>> push("http://localhost:3000", "glsa_...", datasource=source)      # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from llmpulse.dashboards.alerts import AlertThresholds, alert_rules
from llmpulse.dashboards.definitions import DASHBOARDS
from llmpulse.dashboards.grafana import (
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    alert_rule_json,
    dashboard_json,
    datasource_json,
)

__all__ = ["PushError", "PushResult", "clickhouse_datasource", "push"]

logger = logging.getLogger(__name__)


class PushError(Exception):
    """Grafana refused a request, or could not be reached; the message says which."""


@dataclass
class PushResult:
    """What each object became: ``created``, ``updated`` or ``unchanged``."""

    folder: str = ""
    datasource: str = "skipped"
    dashboards: dict[str, str] = field(default_factory=dict)
    alert_rules: dict[str, str] = field(default_factory=dict)


def clickhouse_datasource(url: str) -> dict[str, Any]:
    """The data source for a ClickHouse server URL as Grafana reaches it.

    ``http(s)://user:password@host:port/database``; ``clickhouse://`` selects the native
    protocol (port 9000 by default).

    Raises:
        ValueError: the URL is not a ClickHouse server URL (an embedded ``chdb://`` store
            cannot be read by Grafana).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "clickhouse", "clickhouses"):
        raise ValueError(
            f"Grafana needs a ClickHouse server URL (http://user:pass@host:8123/db), not {parts.scheme}://"
        )
    secure = parts.scheme in ("https", "clickhouses")
    native = parts.scheme.startswith("clickhouse")
    port = parts.port or ((9440 if secure else 9000) if native else (8443 if secure else 8123))
    return datasource_json(
        host=parts.hostname or "localhost",
        port=port,
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.strip("/")) or "llmpulse",
        protocol="native" if native else "http",
        secure=secure,
    )


def _missing(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except GrafanaException as exc:
        raise PushError(f"{what}: Grafana answered {exc.status_code}: {exc.message}") from exc
    except Exception as exc:  # connection refused, DNS, TLS...
        raise PushError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _exists(what: str, fn: Any, *args: Any) -> Any | None:
    try:
        return fn(*args)
    except GrafanaException as exc:
        if _missing(exc):
            return None
        raise PushError(f"{what}: Grafana answered {exc.status_code}: {exc.message}") from exc
    except Exception as exc:
        raise PushError(f"{what}: {type(exc).__name__}: {exc}") from exc


def push(
    grafana_url: str,
    token: str | None,
    *,
    datasource: dict[str, Any] | None = None,
    thresholds: AlertThresholds | None = None,
    include_alerts: bool = True,
    timeout: float = 10.0,
) -> PushResult:
    """Create or update the llmpulse folder, data source, dashboards and alert rules.

    Args:
        grafana_url: ``http://localhost:3000`` (a ``user:password@`` in it works too).
        token: a service-account token (None: the URL's basic credentials).
        datasource: the ClickHouse data source (``clickhouse_datasource(url)``); None
            leaves the data source as it is.
        thresholds: the alert thresholds (default: ``AlertThresholds.from_env()``).
        include_alerts: push the alert rules too.
        timeout: seconds per request.

    Raises:
        PushError: a request failed; the message names which and Grafana's answer.
    """
    api = GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout)
    result = PushResult()
    folder = _exists("read folder", api.folder.get_folder, FOLDER_UID)
    if folder is None:
        _call("create folder", api.folder.create_folder, FOLDER_TITLE, uid=FOLDER_UID)
        result.folder = "created"
    elif folder.get("title") != FOLDER_TITLE:
        _call("rename folder", api.folder.update_folder, FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        result.folder = "updated"
    else:
        result.folder = "unchanged"
    if datasource is not None:
        if _exists("read data source", api.datasource.get_datasource_by_uid, DATASOURCE_UID) is None:
            _call("create data source", api.datasource.create_datasource, datasource)
            result.datasource = "created"
        else:
            _call("update data source", api.datasource.update_datasource_by_uid, DATASOURCE_UID, datasource)
            result.datasource = "updated"
    for spec in DASHBOARDS:
        board = dashboard_json(spec)
        board.pop("id", None)
        answer = _call(
            f"save dashboard {spec.uid}",
            api.dashboard.update_dashboard,
            {
                "dashboard": board,
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "llmpulse dashboards push",
            },
        )
        result.dashboards[spec.uid] = (
            str(answer.get("status", "success")) if isinstance(answer, dict) else "saved"
        )
    if include_alerts:
        for rule in alert_rules(thresholds):
            body = alert_rule_json(rule)
            if (
                _exists(f"read alert rule {rule.uid}", api.alertingprovisioning.get_alertrule, rule.uid)
                is None
            ):
                _call(f"create alert rule {rule.uid}", api.alertingprovisioning.create_alertrule, body)
                result.alert_rules[rule.uid] = "created"
            else:
                _call(
                    f"update alert rule {rule.uid}", api.alertingprovisioning.update_alertrule, rule.uid, body
                )
                result.alert_rules[rule.uid] = "updated"
    from llmpulse.sinks.store import mask_url

    logger.info(
        "pushed to %s: folder %s, data source %s, %d dashboards, %d alert rules",
        mask_url(grafana_url),
        result.folder,
        result.datasource,
        len(result.dashboards),
        len(result.alert_rules),
    )
    return result
