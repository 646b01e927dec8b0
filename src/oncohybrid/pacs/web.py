"""DICOMweb service user (PS3.18): QIDO-RS search, WADO-RS retrieve, STOW-RS store.

A thin adapter over ``dicomweb_client.DICOMwebClient``: it builds the HTTP session
from the node's authentication (RFC 7617 basic or RFC 6750 bearer token), maps HTTP
and connection failures to :class:`~oncohybrid.errors.PacsError` naming the node,
and translates between our query/result types and the DICOM JSON model (PS3.18
Annex F). QIDO-RS pages with ``limit``/``offset`` on the server (PS3.18 §8.3.4.4).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import requests
from pydicom.dataset import Dataset

from oncohybrid.errors import PacsError
from oncohybrid.pacs.node import AuthKind, PacsNode
from oncohybrid.pacs.query import RETURN_KEYS, StudyQuery, StudyResult, study_result_from_dataset

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 60


def make_client(node: PacsNode) -> Any:
    """A ``DICOMwebClient`` for the node, authenticated as configured."""
    from dicomweb_client.api import DICOMwebClient

    if not node.is_dicomweb:
        raise PacsError(f"node {node.name!r} is a DIMSE node; this needs a DICOMweb URL")
    session = requests.Session()
    headers: dict[str, str] = {}
    if node.auth is AuthKind.BASIC:
        session.auth = (node.username or "", node.resolve_secret() or "")
    elif node.auth is AuthKind.BEARER:
        headers["Authorization"] = f"Bearer {node.resolve_secret()}"
    client = DICOMwebClient(
        url=node.url or "", session=session, headers=headers or None, timeout=HTTP_TIMEOUT_S
    )
    # dicomweb-client retries 5 times with exponential back-off (about 30 s) - also on
    # connection errors; keep busy-server retries short and quick to fail when down.
    client.set_http_retry_params(retry=True, max_attempts=3, wait_exponential_multiplier=250)
    return client


@contextmanager
def _errors(node: PacsNode, action: str) -> Iterator[None]:
    try:
        yield
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        hint = " (check --auth/--user/--secret-env)" if code in (401, 403) else ""
        raise PacsError(f"node {node.name!r} ({node.url}): {action} failed, HTTP {code}{hint}") \
            from exc
    except requests.RequestException as exc:
        raise PacsError(
            f"node {node.name!r} ({node.url}): {action} failed, {type(exc).__name__}"
        ) from exc


def probe(node: PacsNode) -> float:
    """A minimal QIDO-RS request (one study) to check reachability and credentials."""
    import time

    client = make_client(node)
    client.set_http_retry_params(retry=False)  # a probe answers now or reports failure
    start = time.perf_counter()
    with _errors(node, "QIDO-RS probe"):
        client.search_for_studies(limit=1)
    return time.perf_counter() - start


def search_studies(node: PacsNode, query: StudyQuery) -> list[StudyResult]:
    """QIDO-RS ``/studies`` with the query's filters and server-side paging."""
    client = make_client(node)
    with _errors(node, "QIDO-RS search"):
        rows = client.search_for_studies(
            search_filters=query.qido_filters(),
            limit=query.limit,
            offset=query.offset or None,
            fields=list(RETURN_KEYS) + ["ModalitiesInStudy"],
        )
    results = []
    for row in rows[: query.limit]:
        try:
            ds = Dataset.from_json(row)
        except Exception as exc:  # one malformed answer must not hide the others
            log.warning("node %s: skipped a QIDO-RS result that is not DICOM JSON (%s)",
                        node.name, exc)
            continue
        result = study_result_from_dataset(ds)
        if result is not None:
            results.append(result)
    return results


def retrieve_study(
    node: PacsNode, study_uid: str, on_instance: Callable[[Dataset], str]
) -> dict[str, int]:
    """WADO-RS the study in its stored transfer syntax; count `on_instance` outcomes."""
    client = make_client(node)
    outcomes: dict[str, int] = {}
    # "transfer-syntax=*" asks for the stored encoding (PS3.18 §8.7.3.5.2); an origin
    # server that does not offer it answers 406 and gets the default request instead.
    media: tuple[tuple[str, str], ...] | None = (("application/dicom", "*"),)
    with _errors(node, "WADO-RS retrieve"):
        try:
            for ds in client.iter_study(study_uid, media_types=media):
                label = on_instance(ds)
                outcomes[label] = outcomes.get(label, 0) + 1
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status not in (400, 406) or outcomes:
                raise
            for ds in client.iter_study(study_uid):
                label = on_instance(ds)
                outcomes[label] = outcomes.get(label, 0) + 1
    return outcomes


def store(node: PacsNode, datasets: Sequence[Dataset]) -> Dataset:
    """STOW-RS the datasets; raise if the response lists any failed instance."""
    client = make_client(node)
    with _errors(node, "STOW-RS store"):
        response = client.store_instances(list(datasets))
    failed = response.get("FailedSOPSequence") if response is not None else None
    if failed:
        reasons = sorted({str(item.get("FailureReason", "?")) for item in failed})
        raise PacsError(
            f"node {node.name!r}: STOW-RS refused {len(failed)} of {len(datasets)} instances "
            f"(failure reasons {', '.join(reasons)})"
        )
    return response
