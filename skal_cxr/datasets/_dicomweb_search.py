"""Listing the instances a DICOMweb search matches: QIDO-RS paging, server caps.

:func:`list_instances` runs the searches :func:`parse_dicomweb_query` made:
one search of all the server's instances, or study by study where the
server does not offer it; each paged until the server has nothing more, and
split by study date around a server that caps its whole answer. Credentials,
query strings and errors are in ``_dicomweb``; retrieval into a local store
is in ``_dicomweb_store``.
"""

import datetime
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from ._dicomweb import DicomwebError, describe_failure, make_client

__all__ = ["check_uid", "list_instances"]

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


def _split_levels(search):
    """``(study, series, instance)`` filters of one search."""
    study = {k: v for k, v in search.items() if k in _STUDY_KEYS}
    series = {k: v for k, v in search.items() if k in _SERIES_KEYS}
    instance = {k: v for k, v in search.items() if k not in _STUDY_KEYS | _SERIES_KEYS}
    # Modality is matched on the series only: ModalitiesInStudy would open fewer
    # studies, but Orthanc 1.10 answers nothing past the first page with it
    return study, series, instance


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
