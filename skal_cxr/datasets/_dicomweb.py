"""Talking to a DICOMweb server (a PACS): credentials, QIDO-RS query strings, searches.

The HTTP work is done by ``dicomweb-client`` over a ``requests`` session;
this module adds what a labeling project needs around it: credentials read
from an environment variable or a file (never from the command line), TLS
verification on by default, query strings such as
``"Modality=CR,DX&StudyDate=20240101-20241231"`` turned into QIDO-RS
searches, a listing of the matching instances (one search of all of them, or
study by study where the server does not offer it) paged until the server has
nothing more, and one-line errors (:class:`DicomwebError`) for the ways a
server can fail. Retrieval into a local store is in ``_dicomweb_store``.
"""

import datetime
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import product
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import DicomwebError

__all__ = ["AUTH_SCHEMES", "DicomwebError", "dicomweb_session", "parse_dicomweb_query"]

AUTH_SCHEMES = ("basic", "bearer")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
# attributes matched at the study and series levels (PS3.18 table 10.6.1-5);
# any other attribute is matched on the instances
_STUDY_KEYS = {
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "PatientBirthDate",
    "PatientSex",
    "IssuerOfPatientID",
}
_SERIES_KEYS = {
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "SeriesDate",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
}
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}
# SR, key objects, presentation states, encapsulated documents, raw data, RT: no image
_NOT_IMAGES = (
    "1.2.840.10008.5.1.4.1.1.88.",
    "1.2.840.10008.5.1.4.1.1.11.",
    "1.2.840.10008.5.1.4.1.1.104.",
    "1.2.840.10008.5.1.4.1.1.66",
    "1.2.840.10008.5.1.4.1.1.481.",
)
# answers meaning "this server does not search all its instances at once"
_NO_ROOT_SEARCH = (400, 404, 405, 501)


def parse_dicomweb_query(query):
    """Turn a query string into the QIDO-RS searches it stands for.

    ``"Modality=CR,DX&StudyDate=20240101-20241231"`` selects the CR and DX
    films of 2024. Keys are DICOM keywords (``StudyDate``, ``Modality``,
    ``BodyPartExamined``, ``ViewPosition``, ...) or tags (``00080060``);
    values follow QIDO-RS matching (``*`` and ``?`` wildcards, ``A-B`` date
    ranges). A comma separates alternatives: UID-valued attributes keep the
    list (QIDO-RS UID list matching), any other becomes one search per value,
    since servers do not all accept lists there.

    Parameters
    ----------
    query : str or None
        ``key=value`` pairs joined by ``&``; ``None`` or ``""`` matches every
        instance.

    Returns
    -------
    searches : list of dict
        One ``{keyword: value}`` dict per search, in a stable order; their
        results are united.

    Raises
    ------
    DicomwebError
        For a key that is not a DICOM attribute, a paging parameter
        (``limit``, ``offset``: paging is done for you), or a repeated key.

    Examples
    --------
    >>> from skal_cxr.datasets import parse_dicomweb_query
    >>> for search in parse_dicomweb_query("Modality=CR,DX&StudyDate=20240101-20241231"):
    ...     print(search)
    {'Modality': 'CR', 'StudyDate': '20240101-20241231'}
    {'Modality': 'DX', 'StudyDate': '20240101-20241231'}
    """
    from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

    if query is None or not str(query).strip():
        return [{}]
    try:
        pairs = parse_qsl(str(query).strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DicomwebError(f"query {query!r} is not of the form Key=value&Key=value.") from None
    choices = {}
    for key, value in pairs:
        key = key.strip()
        if key.lower() in _RESERVED:
            raise DicomwebError(
                f"query key {key!r} is not allowed: paging and fields are "
                "handled for you; give only attribute=value pairs."
            )
        if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
            keyword = keyword_for_tag(int(key, 16)) or key.upper()
        elif tag_for_keyword(key) is not None:
            keyword = key
        else:
            raise DicomwebError(
                f"query key {key!r} is not a DICOM keyword or tag "
                "(e.g. Modality, StudyDate, 00080060)."
            )
        if keyword in choices:
            raise DicomwebError(
                f"query key {keyword!r} is given twice; list the values "
                "after one key, separated by commas."
            )
        tag = (
            tag_for_keyword(keyword)
            if not re.fullmatch(r"[0-9A-F]{8}", keyword)
            else int(keyword, 16)
        )
        is_uid = tag is not None and _safe_vr(dictionary_VR, tag) == "UI"
        values = [value] if is_uid else [v.strip() for v in value.split(",")]
        if not all(values):
            raise DicomwebError(f"query key {keyword!r} has an empty value in {value!r}.")
        choices[keyword] = values
    keys = list(choices)
    searches = [dict(zip(keys, combo)) for combo in product(*(choices[k] for k in keys))]
    if len(searches) > 64:
        raise DicomwebError(f"query {query!r} stands for {len(searches)} searches (at most 64).")
    return searches


def _safe_vr(dictionary_VR, tag):
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _split_levels(search):
    """``(study, series, instance)`` filters of one search."""
    study = {k: v for k, v in search.items() if k in _STUDY_KEYS}
    series = {k: v for k, v in search.items() if k in _SERIES_KEYS}
    instance = {k: v for k, v in search.items() if k not in _STUDY_KEYS | _SERIES_KEYS}
    # Modality is matched on the series only: ModalitiesInStudy would open fewer
    # studies, but Orthanc 1.10 answers nothing past the first page with it
    return study, series, instance


def _read_secret(auth, credentials_file, credentials_env):
    if auth is None:
        if credentials_file is not None or credentials_env is not None:
            raise DicomwebError("credentials were given without auth='basic' or 'bearer'.")
        return None
    if auth not in AUTH_SCHEMES:
        raise DicomwebError(f"auth must be one of {AUTH_SCHEMES} or None; got {auth!r}.")
    if (credentials_file is None) == (credentials_env is None):
        raise DicomwebError(
            f"auth={auth!r} needs exactly one of credentials_file (a path) or "
            "credentials_env (an environment variable's name)."
        )
    if credentials_env is not None:
        secret = os.environ.get(credentials_env)
        if not secret:
            raise DicomwebError(f"environment variable {credentials_env} is not set or empty.")
    else:
        try:
            with open(credentials_file, encoding="utf-8") as f:
                mode = os.fstat(f.fileno()).st_mode
                secret = f.read()
            if os.name == "posix" and mode & 0o077:  # as ssh does for a private key
                warnings.warn(
                    f"the credentials file {credentials_file} is readable by others "
                    f"(mode {mode & 0o777:o}); make it private: chmod 600 {credentials_file}",
                    stacklevel=3,
                )
        except OSError as exc:
            raise DicomwebError(
                f"cannot read the credentials file {credentials_file}: {exc.strerror or exc}."
            ) from None
    secret = secret.strip()
    if auth == "basic":
        user, sep, password = secret.partition(":")
        if not sep or not user:
            raise DicomwebError("basic credentials must be one line user:password.")
        return (user, password)
    if not secret or any(c.isspace() for c in secret):
        raise DicomwebError("a bearer token must be one line without spaces.")
    return secret


def dicomweb_session(auth=None, *, credentials_file=None, credentials_env=None, ca_bundle=None):
    """A ``requests`` session carrying DICOMweb credentials, verifying TLS.

    Credentials never come from the command line or a project: they are read
    here from a file or an environment variable, kept in memory only.

    Parameters
    ----------
    auth : {None, "basic", "bearer"}, default=None
        ``"basic"``: HTTP basic authentication with a ``user:password``
        secret; ``"bearer"``: an ``Authorization: Bearer TOKEN`` header
        (OAuth 2 / OpenID Connect access token); ``None``: no credentials.
    credentials_file : path-like, default=None
        A file holding the secret (one line; make it readable by you only).
    credentials_env : str, default=None
        The name of an environment variable holding the secret.
    ca_bundle : path-like, default=None
        A PEM bundle of the certificate authorities to trust (a hospital's
        own CA); ``None`` trusts the system's. Certificates are always
        verified.

    Returns
    -------
    session : requests.Session

    Raises
    ------
    DicomwebError
        For missing or malformed credentials, or a CA bundle that does not
        exist.
    """
    import requests

    secret = _read_secret(auth, credentials_file, credentials_env)
    session = requests.Session()
    if auth == "basic":
        session.auth = secret
    elif auth == "bearer":
        session.headers["Authorization"] = f"Bearer {secret}"
    if ca_bundle is not None:
        if not os.path.isfile(ca_bundle):
            raise DicomwebError(f"CA bundle {ca_bundle} does not exist.")
        session.verify = os.fspath(ca_bundle)
    else:
        session.verify = True
    return session


def check_url(url, session):
    """The URL without a trailing slash; refuse credentials in it, warn about plain HTTP."""
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DicomwebError(f"DICOMweb URL must be http(s)://host[:port]/path; got {url!r}.")
    if parts.username or parts.password:
        raise DicomwebError(
            "the DICOMweb URL must not hold credentials; give them in a file "
            "or an environment variable."
        )
    sends_secret = session.auth is not None or "Authorization" in session.headers
    if (
        parts.scheme == "http"
        and sends_secret
        and parts.hostname not in ("127.0.0.1", "localhost", "::1")
    ):
        warnings.warn(
            f"credentials go to {parts.hostname} over plain HTTP; use https.", stacklevel=3
        )
    return str(url).rstrip("/")


#: Attempts per request: dicomweb-client retries a failed connection and the answers
#: 408, 429, 503 and 504 with exponential back-off (2, 4, 8, 16 s between attempts).
MAX_ATTEMPTS = 5


def make_client(url, session, timeout=30):
    """A ``DICOMwebClient`` of ``url``, retrying ``MAX_ATTEMPTS`` times."""
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url, session=session, timeout=timeout)
    client.set_http_retry_params(retry=MAX_ATTEMPTS > 1, max_attempts=MAX_ATTEMPTS)
    return client


def describe_failure(url, exc):
    """One line saying why a request to ``url`` failed."""
    import requests

    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        code = exc.response.status_code
        if code in (401, 403):
            return (
                f"DICOMweb server {url} refused the credentials (HTTP {code} "
                f"{exc.response.reason})."
            )
        return f"DICOMweb server {url} answered HTTP {code} {exc.response.reason}."
    if isinstance(exc, requests.exceptions.SSLError):
        return (
            f"TLS verification of {url} failed (give the hospital's CA with a CA bundle); "
            f"{_one_line(exc)}"
        )
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return f"cannot reach DICOMweb server {url} ({type(exc).__name__})."
    return f"DICOMweb server {url} gave an unusable answer: {type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc):
    return " ".join(str(exc).split())[:300]


def _value(item, keyword):
    """The first value of ``keyword`` in a DICOM JSON dataset, or None."""
    from pydicom.datadict import tag_for_keyword

    element = item.get(f"{tag_for_keyword(keyword):08X}")
    if not element or not element.get("Value"):
        return None
    return element["Value"][0]


def check_uid(uid, what):
    """A UID from a server, checked (it becomes a file name)."""
    if not isinstance(uid, str) or len(uid) > 64 or not _UID.match(uid):
        raise DicomwebError(f"the server sent an invalid {what}: {str(uid)[:80]!r}.")
    return uid


def _paged(search, page_size):
    """Every result of ``search(offset, limit)``, asked for page by page until an empty page.

    A page shorter than ``page_size`` is not taken for the last one: servers
    cap their answers below the size asked for (dcm4chee, the cloud archives,
    Orthanc's ``LimitFindInstances``), so the next page is asked for. A server
    that answers the same page whatever the offset is read once, with a
    one-line warning.
    """
    offset, previous = 0, None
    while True:
        page = search(offset, page_size)
        if not page:
            return
        if page == previous:
            warnings.warn(
                f"a DICOMweb server answers the same {len(page)} results whatever the "
                "offset (it ignores the offset): only those are read.",
                stacklevel=2,
            )
            return
        yield from page
        offset += len(page)
        previous = page


def _date(text):
    """A ``YYYYMMDD`` string as a date, or None."""
    try:
        return datetime.datetime.strptime(str(text), "%Y%m%d").date()
    except ValueError:
        return None


def _date_bounds(value):
    """``(first, last)`` dates of a QIDO StudyDate value (None: open), or None if not a range."""
    if value is None:
        return (None, None)
    first, sep, last = str(value).partition("-")
    if not sep:
        first = last = str(value)
    bounds = tuple(_date(v) if v else None for v in (first, last))
    if any(v and b is None for v, b in zip((first, last), bounds)):
        return None  # a wildcard or a time: not split
    return bounds


def _qido_range(first, last):
    text = "%Y%m%d"
    if first == last:
        return first.strftime(text)
    return f"{first.strftime(text) if first else ''}-{last.strftime(text) if last else ''}"


def _split_dates(search, dates):
    """Two searches that split ``search``'s StudyDate range between the ``dates`` found.

    Returns ``None`` when the range is one day (or not a plain date range).
    """
    bounds = _date_bounds(search.get("StudyDate"))
    found = sorted({d for d in map(_date, dates) if d is not None})
    if bounds is None or not found:
        return None
    first, last = bounds
    if first is not None and first == last:
        return None
    day = datetime.timedelta(days=1)
    if len(found) >= 2:
        cut = found[(len(found) - 1) // 2]  # the first half ends on the lower median
    elif last is None or found[0] < last:
        cut = found[0]
    else:
        cut = found[0] - day  # everything found is on the range's last day
    return (
        {**search, "StudyDate": _qido_range(first, cut)},
        {**search, "StudyDate": _qido_range(cut + day, last)},
    )


def _uncapped(run, search, date_of, url):
    """Every result of ``search``, read around a server's cap on its answers.

    A server may answer at most N results to a search and nothing past them,
    whatever the offset (Orthanc's ``LimitFindInstances`` /
    ``LimitFindResults``). ``run(search)`` lists a search's results (paged);
    the search is then split in two at the median study date of what it
    found: halves finding more than the whole show a cap, and every search
    answering as many results as that cap is split again, until each answers
    fewer. A one-day search that still reaches the cap cannot be split: a
    one-line warning names the day, and its results are kept.

    Returns
    -------
    results : list
        The union of the searches' results (with repeats).
    """
    found = run(search)
    results, pending, cap = list(found), [(search, found)], None
    while pending:
        part, got = pending.pop()
        if not got or (cap is not None and len(got) < cap):
            continue
        halves = _split_dates(part, [date_of(item) for item in got])
        if halves is None:
            if cap is not None:
                warnings.warn(
                    f"DICOMweb server {url} capped its answer to a search at {cap} results "
                    f"and it cannot be split further (StudyDate {part.get('StudyDate')}): "
                    "images of that day may be missing; raise the server's limit "
                    "(Orthanc: LimitFindInstances, LimitFindResults).",
                    stacklevel=3,
                )
            continue
        split = [run(half) for half in halves]
        results += split[0] + split[1]
        if cap is None:
            if len(split[0]) + len(split[1]) <= len(got):
                continue  # the halves find nothing more: no cap shows
            cap = len(got)
        pending += [(half, items) for half, items in zip(halves, split)]
    return results


def list_instances(url, session, searches, *, page_size=200, n_jobs=4, timeout=30):
    """Every image instance matching one of ``searches``, listed with QIDO-RS.

    One paged search of all the server's instances (``/instances``, with
    every attribute of the search) when the server offers it; otherwise the
    studies (``/studies`` with the study attributes: dates, patient...), then
    each study's instances (``/studies/{uid}/instances`` with the series and
    instance attributes: modality, view...), by ``n_jobs`` threads. Results
    are asked for in pages of ``page_size`` (``offset``/``limit``) until an
    empty page, so a server capping its pages is read to the end; a server
    that caps a search's whole answer (and cannot page past it) is read by
    splitting the search by study date (see ``_uncapped``).

    Returns
    -------
    instances : list of dict
        ``{"study", "series", "sop", "study_date", "number"}`` per image
        instance (structured reports, presentation states and other
        instances without an image are left out),
        distinct by SOP Instance UID, sorted by study date, study, series,
        instance number and UID.
    """
    import requests

    local = threading.local()

    def client():
        if not hasattr(local, "client"):
            local.client = make_client(url, session, timeout)
        return local.client

    def records(items, study_uid=None, date=None):
        for item in items:
            if str(_value(item, "SOPClassUID") or "").startswith(_NOT_IMAGES):
                continue  # e.g. the structured reports of an earlier export
            yield {
                "study": study_uid
                or check_uid(_value(item, "StudyInstanceUID"), "StudyInstanceUID"),
                "series": check_uid(_value(item, "SeriesInstanceUID"), "SeriesInstanceUID"),
                "sop": check_uid(_value(item, "SOPInstanceUID"), "SOPInstanceUID"),
                "number": _value(item, "InstanceNumber"),
                "study_date": date if study_uid else str(_value(item, "StudyDate") or ""),
            }

    def everywhere(search):
        def run(part):
            return list(
                records(
                    _paged(
                        lambda offset, limit: client().search_for_instances(
                            search_filters=part or None,
                            fields=["StudyDate"],
                            offset=offset,
                            limit=limit,
                        ),
                        page_size,
                    )
                )
            )

        return _uncapped(run, search, lambda item: item["study_date"], url)

    def study_by_study(search, pool):
        study_filters, series_filters, instance_filters = _split_levels(search)

        def run(part):
            return list(
                _paged(
                    lambda offset, limit: client().search_for_studies(
                        search_filters=part or None,
                        fields=["StudyDate", "NumberOfStudyRelatedInstances"],
                        offset=offset,
                        limit=limit,
                    ),
                    page_size,
                )
            )

        studies = _uncapped(run, study_filters, lambda s: _value(s, "StudyDate"), url)
        dates, sizes = {}, {}
        for s in studies:
            uid = check_uid(_value(s, "StudyInstanceUID"), "StudyInstanceUID")
            dates[uid] = str(_value(s, "StudyDate") or "")
            sizes[uid] = _value(s, "NumberOfStudyRelatedInstances")
        filters = {**series_filters, **instance_filters}

        def instances_of(uid):
            found = list(
                _paged(
                    lambda offset, limit: client().search_for_instances(
                        uid, search_filters=filters or None, offset=offset, limit=limit
                    ),
                    page_size,
                )
            )
            size = sizes[uid]
            if not filters and isinstance(size, int) and len(found) < size:
                warnings.warn(
                    f"DICOMweb server {url} listed {len(found)} of the {size} instances of "
                    f"study {uid} (a cap on its answers): the others are missing; raise the "
                    "server's limit (Orthanc: LimitFindInstances).",
                    stacklevel=2,
                )
            return list(records(found, uid, dates[uid]))

        return [
            item
            for job in [pool.submit(instances_of, uid) for uid in dates]
            for item in job.result()
        ]

    instances = {}
    root = True
    try:
        with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
            for search in searches:
                found = None
                if root:
                    try:
                        found = everywhere(search)
                    except requests.HTTPError as exc:
                        if exc.response is None or exc.response.status_code not in _NO_ROOT_SEARCH:
                            raise
                        root = False
                if found is None:
                    found = study_by_study(search, pool)
                for item in found:
                    instances.setdefault(item["sop"], item)
    except DicomwebError:
        raise
    except Exception as exc:  # requests' and the client's many failures
        raise DicomwebError(describe_failure(url, exc)) from None

    def order(item):
        number = item["number"]
        return (
            item["study_date"],
            item["study"],
            item["series"],
            number if isinstance(number, int) else 0,
            item["sop"],
        )

    return sorted(instances.values(), key=order)
