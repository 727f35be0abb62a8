"""Labeling projects over a PACS: a DICOMweb pool in, DICOM Structured Reports out.

A DICOMweb project keeps the instances its query matched in its own store,
``PROJECT/dicom/`` (see :func:`skal_cxr.datasets.fetch_dicomweb`), and is
otherwise a folder project over that store: the labeling loop, the image
cache and the app are the same. Its configuration records the server's URL,
the query, the authentication scheme and whether patient ids are hashed;
never a secret: every command that talks to the server reads the
credentials again from a file or an environment variable.

A film the project cannot use never blocks the others: one larger than the
pixel limit (:func:`skal_cxr.datasets.max_image_pixels`), one that cannot be
decoded, or one that vanished from the server, is left out of the pool and
recorded with its reason in the store's ``skipped.json``
(:func:`skipped_films`; ``skal-cxr label status`` lists them). A later pull
takes again the films refused as too large once the limit allows them.
"""

import csv
from pathlib import Path

from ..._atomic import replacing
from ...datasets import build_image_cache, fetch_dicomweb
from ...datasets._dicomweb_skipped import record_skipped
from ...datasets._image_io import max_image_pixels
from ...exceptions import DicomwebError, LabelingError
from .._init import init_project
from .._settings import DICOM_DIR, cache_dir
from ..store._db import DB_FILE
from ..store._skipped import _retryable
from ._export import export_dicom

__all__ = ["export_dicom", "init_dicomweb_project", "pull_dicomweb"]

POOL_CSV = "pool.csv"


def _connection(auth, credentials_file, credentials_env, ca_bundle):
    return {
        "auth": auth,
        "credentials_file": credentials_file,
        "credentials_env": credentials_env,
        "ca_bundle": ca_bundle,
    }


def _write_pool_csv(pool, skipped):
    """The store's pool as the CSV a folder project reads: file and patient."""
    path = pool.store_dir / POOL_CSV
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "patient"])
        for record in pool.records:
            if record["sop"] not in skipped:
                # an instance without a PatientID is its study's own patient
                writer.writerow([record["file"], _patient(record)])
    return path


def _patient(record):
    return record["patient"] or f"study:{record['study']}"


def _check_headers(store_dir, records):
    """``{sop: entry}`` of the ``records`` refused from their header: too large, unreadable."""
    import pydicom

    limit = max_image_pixels()
    refused = {}
    for record in records:
        try:
            ds = pydicom.dcmread(Path(store_dir) / record["file"], stop_before_pixels=True)
            rows, columns = int(ds.Rows), int(ds.Columns)
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except Exception as exc:  # pydicom's many failures, a missing Rows...
            refused[record["sop"]] = {
                "kind": "undecodable",
                "reason": f"undecodable: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
            }
            continue
        pixels = rows * columns * frames
        if pixels > limit:
            refused[record["sop"]] = {
                "kind": "too large",
                "pixels": pixels,
                "reason": f"too large: {columns} x {rows}{f' x {frames}' if frames > 1 else ''}"
                f" = {pixels:,} pixels, over the limit of {limit:,}",
            }
    return refused


def init_dicomweb_project(
    path,
    url,
    classes,
    *,
    query=None,
    auth=None,
    credentials_file=None,
    credentials_env=None,
    ca_bundle=None,
    hash_patient_ids=False,
    fetch_n_jobs=4,
    progress=False,
    **options,
):
    """Create a labeling project whose pool is the images a PACS query matches.

    Lists the instances with QIDO-RS and retrieves them with WADO-RS into
    ``path/dicom/`` (:func:`skal_cxr.datasets.fetch_dicomweb`), then makes
    the project as :func:`init_project` does over that folder, with the
    instances' patients for patient-level splits. Interrupted (killed, or
    the server stopping), it goes on where it stopped when called again with
    the same folder. Wrong credentials or an unreachable server leave
    nothing behind.

    Parameters
    ----------
    path : path-like
        The project folder; it must not exist or be empty.
    url : str
        The server's DICOMweb root.
    classes : list of str
        Class names, from least to most severe.
    query : str, default=None
        Which instances (see :func:`skal_cxr.datasets.parse_dicomweb_query`);
        ``None``: every image instance.
    auth : {None, "basic", "bearer"}, default=None
        How to authenticate (see :func:`skal_cxr.datasets.dicomweb_session`).
    credentials_file : path-like, default=None
        A file holding ``user:password`` or the token.
    credentials_env : str, default=None
        An environment variable holding the same.
    ca_bundle : path-like, default=None
        Certificate authorities to trust; TLS is always verified.
    hash_patient_ids : bool, default=False
        Keep only salted hashes of the patient ids (see
        :func:`skal_cxr.datasets.fetch_dicomweb`).
    fetch_n_jobs : int, default=4
        Concurrent requests to the server.
    progress : bool, default=False
        Show progress bars.
    **options : dict
        The options of :func:`init_project` (``labels_per_image``,
        ``strategy``, ``image_size``, ...), but not ``csv``, ``image_column``,
        ``group_column`` or ``date_column`` (patients and study dates come
        from the DICOM files).

    Returns
    -------
    project : LabelingProject
    """
    for key in ("csv", "image_column", "group_column", "date_column"):
        if key in options:
            raise LabelingError(f"{key} does not apply to a DICOMweb project.")
    path = Path(path)
    if (path / DB_FILE).exists():
        raise LabelingError(
            f"{path} is already a project; `skal-cxr label pull {path}` "
            "retrieves the studies that arrived since."
        )
    source = {
        "url": url,
        "query": query or "",
        "auth": auth,
        "hash_patient_ids": bool(hash_patient_ids),
    }

    def retrieve():  # once init_project has checked the options
        try:
            pool = fetch_dicomweb(
                url,
                path / DICOM_DIR,
                query,
                hash_patient_ids=hash_patient_ids,
                n_jobs=fetch_n_jobs,
                progress=progress,
                **_connection(auth, credentials_file, credentials_env, ca_bundle),
            )
        except DicomwebError as exc:
            raise LabelingError(str(exc)) from None
        if not len(pool):
            raise LabelingError(f"the query {query or '(none)'!r} matched no image on {pool.url}.")
        skipped = pool.skipped
        retry = _retryable(skipped)
        candidates = [r for r in pool.records if r["sop"] not in skipped or r["sop"] in retry]
        refused = _check_headers(pool.store_dir, candidates)
        skipped = record_skipped(pool.store_dir, refused, retry - set(refused))
        if len(skipped) >= len(pool):
            raise LabelingError(
                f"none of the {len(pool)} images the query matched on {pool.url} can be "
                f"used (first: {next(iter(skipped.values()))['reason']})."
            )
        _write_pool_csv(pool, skipped)
        source["url"] = pool.url  # as stored: checked, no trailing slash

    store = path / DICOM_DIR
    project = init_project(
        path,
        store,
        classes,
        csv=store / POOL_CSV,
        image_column="filename",
        group_column="patient",
        progress=progress,
        prepare=retrieve,
        dicomweb=source,
        **options,
    )
    return project


def pull_dicomweb(
    project,
    *,
    credentials_file=None,
    credentials_env=None,
    ca_bundle=None,
    fetch_n_jobs=4,
    progress=False,
):
    """Add to a DICOMweb project the instances that arrived on the server since.

    Runs the project's query again and retrieves only the new instances;
    they join the pool after the earlier ones (the labels, rounds and stop
    set stay as they are), and the next round's query considers them. A
    film that is too large, cannot be decoded or vanished from the server is
    skipped and recorded (:func:`skipped_films`), never blocking the others;
    the films refused as too large are taken once the pixel limit allows.
    The project's view of the pool is not retrained here:
    :func:`~skal_cxr.labeling.worker._view.view_advice` gives the one line saying
    when the pool has outgrown it (``skal-cxr label pull`` prints it), and
    :func:`~skal_cxr.labeling.worker._view.retrain_view` retrains it.

    Parameters
    ----------
    project : LabelingProject
        A project made by :func:`init_dicomweb_project`.
    credentials_file : path-like, default=None
        A file holding the secret of the project's ``auth`` scheme.
    credentials_env : str, default=None
        An environment variable holding it.
    ca_bundle : path-like, default=None
        Certificate authorities to trust.
    fetch_n_jobs : int, default=4
        Concurrent requests to the server.
    progress : bool, default=False
        Show progress bars.

    Returns
    -------
    n_new : int
        Images added to the pool.
    """
    source = project.config.get("dicomweb")
    if not source:
        raise LabelingError(f"{project.path} is not a DICOMweb project.")
    try:
        pool = fetch_dicomweb(
            source["url"],
            project.path / DICOM_DIR,
            source["query"] or None,
            hash_patient_ids=source["hash_patient_ids"],
            n_jobs=fetch_n_jobs,
            progress=progress,
            **_connection(source["auth"], credentials_file, credentials_env, ca_bundle),
        )
    except DicomwebError as exc:
        raise LabelingError(str(exc)) from None
    known = {rel for _, rel, _, _ in project.image_table()}
    skipped = pool.skipped
    retry = _retryable(skipped)
    candidates = [
        r
        for r in pool.records
        if r["file"] not in known and (r["sop"] not in skipped or r["sop"] in retry)
    ]
    refused = _check_headers(pool.store_dir, candidates)
    new = [r for r in candidates if r["sop"] not in refused]
    if new:
        refused.update(_add_images(project, new, progress))
    skipped = record_skipped(pool.store_dir, refused, retry - set(refused))
    _write_pool_csv(pool, skipped)
    return len(new) - sum(r["sop"] in refused for r in new)


def _add_images(project, records, progress):
    """Register the store's ``records`` after the pool's images, cached first.

    Returns ``{sop: entry}`` of those that cannot be decoded: they are left out.
    """
    table = project.image_table()
    root = Path(project.config["image_dir"])
    files = [root / rel for _, rel, _, _ in table]
    size = project.config["image_size"]
    undecodable = {}
    while True:
        rows = [r for r in records if r["sop"] not in undecodable]
        cache = build_image_cache(
            files + [root / r["file"] for r in rows],
            cache_dir(project.path, size),
            tuple(size),
            verbose=progress,
        )
        old = [e["error"] for e in cache.index[: len(table)] if e["error"]]
        if old:
            raise LabelingError(
                f"{len(old)} images of the pool cannot be read: "
                + "; ".join(old[:20])
                + (" ..." if len(old) > 20 else "")
            )
        failed = {
            r["sop"]: {"kind": "undecodable", "reason": f"undecodable: {e['error']}"}
            for r, e in zip(rows, cache.index[len(table) :])
            if e["error"]
        }
        if not failed:
            break
        undecodable.update(failed)  # built again without them: the rows decoded are reused
    if not rows:
        return undecodable
    hashes = [entry["sha256"] for entry in cache.index[len(table) :]]
    rows = [(r["file"], _patient(r)) for r in rows]
    dates = [_study_date(root / rel) for rel, _ in rows]  # the related films' order
    project.add_images(
        [(rel, h, patient, date) for (rel, patient), h, date in zip(rows, hashes, dates)],
        len(table),
    )
    return undecodable


def _study_date(path):
    """The StudyDate of a pulled DICOM file (header only), or None."""
    from ...datasets._image_io import read_dicom_header

    try:
        value = str(read_dicom_header(path).get("StudyDate", "")).strip()
    except Exception:  # a header that cannot be read leaves the film undated
        return None
    return value or None
