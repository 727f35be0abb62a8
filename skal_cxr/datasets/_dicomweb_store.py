"""A DICOMweb pool retrieved into a local store: resumable, incremental, atomic.

Layout of a store folder::

    registry.json              the pool: one record per instance, in registration order
    instances/<SOP UID>.dcm    one DICOM file per instance, as the server sent it
    patient-id-salt            the salt of the hashed patient ids (hash_patient_ids only)
    skipped.json               instances left out of the pool, each with its reason

Every instance file is written to a temporary name, synced and renamed into
place, so a file under its final name is always complete: a retrieval that
is killed, or whose server stops answering, leaves only whole instances
(and temporary files, removed by the next run). A new run lists the query's
instances again (QIDO-RS, cheap) and retrieves (WADO-RS) only those not yet
in the store; new instances are appended to the registry, so earlier ones
keep their place. The registry is written, atomically, only once every
listed instance is in the store.

An instance that cannot join the pool never blocks the others: one the
server lists but no longer sends (HTTP 404 or 410), one without pixel data,
and one that vanished (its file gone from the store and the server no longer
listing it) is left out and recorded in ``skipped.json`` with its reason
(:func:`skipped_instances`; ``_dicomweb_skipped``); a labeling project
records there too the films it refuses to decode (too large, unreadable). A
vanished instance listed again is retrieved again.
"""

import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from .._atomic import fsync_dir, replacing
from ._cache import _atomic_write_json, _read_json, build_image_cache
from ._dicomweb import (
    DicomwebError,
    check_url,
    describe_failure,
    dicomweb_session,
    make_client,
    parse_dicomweb_query,
)
from ._dicomweb_search import list_instances
from ._dicomweb_skipped import _write_skipped, skipped_instances
from ._image_io import read_dicom_header

__all__ = [
    "DicomwebPool",
    "build_dicomweb_cache",
    "fetch_dicomweb",
]

_FORMAT = 1
REGISTRY, INSTANCES, SALT = "registry.json", "instances", "patient-id-salt"
# group 0010 elements kept (emptied or hashed) when patient ids are hashed
_KEEP_PATIENT = {0x00100020, 0x00100010, 0x00100040}  # PatientID, PatientName, PatientSex


class DicomwebPool:
    """The instances of a DICOMweb pool held in a local store folder.

    Made by :func:`fetch_dicomweb`; ``DicomwebPool(store_dir)`` opens the
    last complete retrieval of a folder without contacting the server.

    Parameters
    ----------
    store_dir : str or path-like
        The store folder.

    Attributes
    ----------
    records : list of dict
        One per instance, in registration order: ``sop`` (SOP Instance
        UID), ``study``, ``series`` (Study / Series Instance UIDs),
        ``patient`` (PatientID, or its salted hash; ``None`` when empty),
        ``study_date`` (``YYYYMMDD`` or ``None``), ``view_position``
        (``PA``, ``AP``, ``LL``... or ``None``), ``modality`` and ``file``
        (the path relative to the store).
    files : list of pathlib.Path
        The absolute path of every record's file.
    url : str
        The server's DICOMweb root.
    hash_patient_ids : bool
    n_fetched : int
        Instances retrieved by the call that returned this object (0 when
        opened from the folder).
    skipped : dict
        ``{sop: {"kind", "reason", ...}}``: the instances left out (see
        :func:`skipped_instances`).

    Raises
    ------
    FileNotFoundError
        When the folder holds no complete retrieval.
    """

    def __init__(self, store_dir):
        self.store_dir = Path(store_dir)
        registry = _read_json(self.store_dir / REGISTRY)
        if not registry:
            raise FileNotFoundError(f"{self.store_dir} holds no DICOMweb pool.")
        self.url = registry["url"]
        self.hash_patient_ids = registry["hash_patient_ids"]
        self.records = registry["instances"]
        self.files = [self.store_dir / r["file"] for r in self.records]
        self.n_fetched = 0
        self.skipped = skipped_instances(self.store_dir)

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return f"DicomwebPool({str(self.store_dir)!r}, n_instances={len(self)})"


def fetch_dicomweb(
    url,
    store_dir,
    query=None,
    *,
    auth=None,
    credentials_file=None,
    credentials_env=None,
    ca_bundle=None,
    hash_patient_ids=False,
    page_size=200,
    n_jobs=4,
    timeout=30,
    progress=False,
):
    """Retrieve the instances a QIDO-RS query matches into a local store folder.

    Lists the matching instances (QIDO-RS, paged; see
    :func:`parse_dicomweb_query`), then retrieves each instance not yet in the store (WADO-RS) into
    ``store_dir/instances/<SOP Instance UID>.dcm``. The retrieval is

    - resumable: each instance is written atomically, so a retrieval that is
      interrupted (killed, or the server stopping) goes on where it stopped
      when called again, and never leaves a partial file;
    - incremental: called again with the same query, it retrieves only the
      instances that arrived on the server since; earlier instances keep
      their place in :attr:`DicomwebPool.records`.
    - never blocked by one instance: one the server lists but no longer
      sends (HTTP 404 or 410), one without pixel data, and one whose file
      left the store while the server no longer lists it, is left out of
      the pool and recorded with its reason (:attr:`DicomwebPool.skipped`);
      a vanished instance the server lists again is retrieved again.

    Nothing is written before the server has answered the first search, so
    wrong credentials or a wrong URL leave no folder behind. Patient ids and
    names are never logged.

    Parameters
    ----------
    url : str
        The DICOMweb root of the server (e.g. Orthanc's
        ``https://pacs.example.org/dicom-web``); it must not hold
        credentials.
    store_dir : str or path-like
        The store folder (created).
    query : str, default=None
        Which instances, as ``"Modality=CR,DX&StudyDate=20240101-20241231"``
        (see :func:`parse_dicomweb_query`); ``None`` takes every image
        instance of the server.
    auth : {None, "basic", "bearer"}, default=None
        How to authenticate (see :func:`dicomweb_session`).
    credentials_file : path-like, default=None
        A file holding ``user:password`` (basic) or a token (bearer).
    credentials_env : str, default=None
        An environment variable holding the same.
    ca_bundle : path-like, default=None
        Certificate authorities to trust for TLS; verification is always on.
    hash_patient_ids : bool, default=False
        De-identification of what the project keeps: each PatientID is
        replaced by its salted SHA-256 (the salt, random, is kept in the
        store as ``patient-id-salt``, so a patient's later studies get the
        same hash), PatientName is emptied, every other patient attribute
        (group 0010: birth date, other ids, address...) but the sex and
        every private attribute are removed from the stored files. Study
        dates, UIDs and the pixels (with any burned-in text) are kept: this
        is not a full PS3.15 de-identification. A store keeps the choice it
        was made with.
    page_size : int, default=200
        Results asked for per QIDO-RS request.
    n_jobs : int, default=4
        Concurrent requests.
    timeout : float, default=30
        Seconds to wait for each answer.
    progress : bool, default=False
        Show a progress bar of the retrieval.

    Returns
    -------
    pool : DicomwebPool
        All the instances of the store, ``n_fetched`` of them retrieved now.

    Raises
    ------
    DicomwebError
        With one line: unreachable server, refused credentials, bad query,
        or a server that stopped answering (run again to resume).

    See Also
    --------
    build_dicomweb_cache : Retrieve, then decode into an image cache.
    """
    searches = parse_dicomweb_query(query)
    session = dicomweb_session(
        auth,
        credentials_file=credentials_file,
        credentials_env=credentials_env,
        ca_bundle=ca_bundle,
    )
    url = check_url(url, session)
    store_dir = Path(store_dir)
    registry = _read_json(store_dir / REGISTRY)
    if registry and registry["hash_patient_ids"] != bool(hash_patient_ids):
        raise DicomwebError(
            f"{store_dir} was made with hash_patient_ids="
            f"{registry['hash_patient_ids']}; a store keeps that choice."
        )
    listed = list_instances(
        url, session, searches, page_size=page_size, n_jobs=n_jobs, timeout=timeout
    )
    folder = store_dir / INSTANCES
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # left by a killed retrieval
    salt = _salt(store_dir) if hash_patient_ids else None
    skipped = skipped_instances(store_dir)
    on_server = {item["sop"] for item in listed}
    known = {}
    for r in (registry or {}).get("instances", []):
        if r["sop"] in on_server or (store_dir / r["file"]).exists():
            known[r["sop"]] = r
        else:
            skipped[r["sop"]] = {
                "kind": "vanished",
                "reason": "vanished: its file left the store and the server no longer lists it",
            }
    listed = [item for item in listed if skipped.get(item["sop"], {}).get("kind") != "no image"]
    todo = [item for item in listed if not (folder / f"{item['sop']}.dcm").exists()]
    refused = _retrieve(url, session, todo, folder, salt, n_jobs, timeout, progress)
    fsync_dir(folder)
    for sop in on_server:
        if skipped.get(sop, {}).get("kind") == "vanished" and sop not in refused:
            del skipped[sop]  # listed and retrieved again
    skipped.update(refused)
    records = list(known.values())
    records += [
        _record(folder / f"{item['sop']}.dcm", item)
        for item in listed
        if item["sop"] not in known and item["sop"] not in refused
    ]
    queries = list((registry or {}).get("queries", []))
    if (query or "") not in queries:
        queries.append(query or "")
    _atomic_write_json(
        store_dir / REGISTRY,
        {
            "format": _FORMAT,
            "url": url,
            "hash_patient_ids": bool(hash_patient_ids),
            "queries": queries,
            "instances": records,
        },
    )
    _write_skipped(store_dir, skipped)
    pool = DicomwebPool(store_dir)
    pool.n_fetched = len(todo) - len(refused)
    return pool


def build_dicomweb_cache(
    url,
    cache_dir,
    image_size,
    query=None,
    *,
    store_dir=None,
    n_jobs=None,
    progress=False,
    **connection,
):
    """Retrieve a DICOMweb pool and decode it into an image cache.

    :func:`fetch_dicomweb` into ``store_dir``, then
    :func:`build_image_cache` of its files, in registration order: both are
    resumable and incremental, so a second call with the same query
    retrieves and decodes only the new instances.

    Parameters
    ----------
    url : str
        The DICOMweb root of the server.
    cache_dir : str or path-like
        The image cache folder (see :func:`build_image_cache`).
    image_size : int or tuple of (int, int)
        Working size of the cached images.
    query : str, default=None
        Which instances (see :func:`parse_dicomweb_query`).
    store_dir : str or path-like, default=None
        The DICOM store; ``None`` is ``cache_dir/dicom``.
    n_jobs : int, default=None
        Threads decoding the images (the retrieval uses ``connection``'s
        ``n_jobs``, default 4).
    progress : bool, default=False
        Show progress bars.
    **connection : dict
        ``auth``, ``credentials_file``, ``credentials_env``, ``ca_bundle``,
        ``hash_patient_ids``, ``page_size``, ``timeout`` and ``fetch_n_jobs``
        of :func:`fetch_dicomweb`.

    Returns
    -------
    cache : ImageCache
        Row ``i`` is ``pool.records[i]``.
    pool : DicomwebPool
    """
    store_dir = Path(cache_dir) / "dicom" if store_dir is None else Path(store_dir)
    fetch_jobs = connection.pop("fetch_n_jobs", 4)
    pool = fetch_dicomweb(url, store_dir, query, n_jobs=fetch_jobs, progress=progress, **connection)
    cache = build_image_cache(pool.files, cache_dir, image_size, n_jobs=n_jobs, verbose=progress)
    return cache, pool


def _salt(store_dir):
    path = Path(store_dir) / SALT
    if not path.exists():
        with replacing(path) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    return path.read_text().strip()


def hash_patient_id(patient_id, salt):
    """The salted SHA-256 (hex) of a PatientID."""
    return hashlib.sha256(f"{salt}:{patient_id}".encode()).hexdigest()


def _deidentify(ds, salt):
    """Hash PatientID, empty PatientName, drop the other patient and private attributes."""
    patient = str(ds.get("PatientID", "") or "")
    for element in list(ds.group_dataset(0x0010)):
        if element.tag not in _KEEP_PATIENT:
            del ds[element.tag]
    ds.PatientID = hash_patient_id(patient, salt) if patient else ""
    ds.PatientName = ""
    ds.remove_private_tags()
    return ds


def _check_complete(ds, sop):
    """Refuse an instance that is not the one asked for, or whose pixels are cut short."""
    if str(ds.get("SOPInstanceUID", "")) != sop:
        raise DicomwebError(f"the server answered another instance for {sop}.")
    if "PixelData" not in ds:
        raise _Refused("no image", "no image: the instance has no pixel data")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is not None and not syntax.is_compressed and ds.get("BitsAllocated", 0) >= 8:
        expected = (
            int(ds.Rows)
            * int(ds.Columns)
            * int(ds.get("SamplesPerPixel", 1))
            * int(ds.get("NumberOfFrames", 1) or 1)
            * (int(ds.BitsAllocated) // 8)
        )
        if len(ds.PixelData) < expected:
            raise DicomwebError(
                f"instance {sop} arrived cut short ({len(ds.PixelData)} of {expected} pixel bytes)."
            )


def _write_atomic(ds, path):
    """Write an instance so that ``path`` is either absent or complete (``_atomic``)."""
    import pydicom

    with replacing(path) as tmp:
        try:
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
        except TypeError:  # pydicom < 3
            pydicom.dcmwrite(tmp, ds, write_like_original=False)


class _Refused(Exception):
    """An instance that cannot join the pool, whatever the retries: ``kind`` and reason."""

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind


def _retrieve(url, session, todo, folder, salt, n_jobs, timeout, progress):
    """WADO-RS every instance of ``todo`` into ``folder``; stop at the first failure.

    Returns ``{sop: entry}`` of the instances refused (gone from the server,
    or without pixel data): those are skipped, not failures.
    """
    import threading

    import requests

    local = threading.local()
    failed = threading.Event()
    refused = {}

    def one(item):
        if failed.is_set():  # another request failed: start no more
            return
        if not hasattr(local, "client"):
            local.client = make_client(url, session, timeout)
        try:
            try:
                ds = local.client.retrieve_instance(item["study"], item["series"], item["sop"])
            except requests.HTTPError as exc:
                code = exc.response.status_code if exc.response is not None else None
                if code not in (404, 410):
                    raise
                raise _Refused(
                    "vanished", f"vanished: listed by the server, but it answered HTTP {code}"
                ) from None
            _check_complete(ds, item["sop"])
        except _Refused as exc:
            refused[item["sop"]] = {"kind": exc.kind, "reason": str(exc)}
            return
        except BaseException:
            failed.set()
            raise
        if salt is not None:
            _deidentify(ds, salt)
        _write_atomic(ds, folder / f"{item['sop']}.dcm")

    done = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool,
        tqdm(total=len(todo), desc="Retrieving", unit="img", disable=not progress) as bar,
    ):
        jobs = [pool.submit(one, item) for item in todo]
        try:
            for job in as_completed(jobs):
                job.result()
                done += 1
                bar.update()
        except Exception as exc:
            for job in jobs:
                job.cancel()
            why = str(exc) if isinstance(exc, DicomwebError) else describe_failure(url, exc)
            raise DicomwebError(
                f"{why.rstrip('.')}; stopped after {done} of {len(todo)} new "
                "instances (those are kept): run again to resume."
            ) from None
    return refused


def _record(path, item):
    """The registry record of a stored instance, read from its header."""
    ds = read_dicom_header(path)

    def text(keyword):
        return str(ds.get(keyword, "") or "").strip() or None

    return {
        "sop": item["sop"],
        "study": item["study"],
        "series": item["series"],
        "patient": text("PatientID"),
        "study_date": text("StudyDate"),
        "view_position": text("ViewPosition"),
        "modality": text("Modality"),
        "file": f"{INSTANCES}/{item['sop']}.dcm",
    }
