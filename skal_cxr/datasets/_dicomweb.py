"""Talking to a DICOMweb server (a PACS): credentials, QIDO-RS query strings, clients.

The HTTP work is done by ``dicomweb-client`` over a ``requests`` session;
this module adds what a labeling project needs around it: credentials read
from an environment variable or a file (never from the command line), TLS
verification on by default, query strings such as
``"Modality=CR,DX&StudyDate=20240101-20241231"`` turned into QIDO-RS
searches, clients that retry, and one-line errors (:class:`DicomwebError`)
for the ways a server can fail. The listing of the matching instances (paged,
read around a server's cap) is in ``_dicomweb_search``; retrieval into a
local store is in ``_dicomweb_store``.
"""

import os
import re
import warnings
from itertools import product
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import DicomwebError

__all__ = ["AUTH_SCHEMES", "DicomwebError", "dicomweb_session", "parse_dicomweb_query"]

AUTH_SCHEMES = ("basic", "bearer")
_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}


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
