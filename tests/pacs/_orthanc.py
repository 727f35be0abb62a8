"""A real Orthanc server for the tests, and chest films written as DICOM CR.

:class:`OrthancServer` starts Debian's ``Orthanc`` (package ``orthanc``) with
the DICOMweb plugin (package ``orthanc-dicomweb``) on a free loopback port,
with a generated configuration in a temporary folder: HTTP only on
127.0.0.1, remote access refused, authentication on with a generated user
and password, no DICOM (DIMSE) server, storage in the folder.
:func:`make_cr_films` makes the test films: several patients, each with one
or more studies (a baseline and follow-ups), one CR instance per study.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np

ORTHANC = os.environ.get("SKAL_CXR_ORTHANC") or shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_missing():
    """Why the Orthanc server cannot run here (``None`` when it can)."""
    if not (os.path.isfile(ORTHANC) and os.access(ORTHANC, os.X_OK)):
        return f"Orthanc not found at {ORTHANC} (apt-get install orthanc orthanc-dicomweb)"
    if not os.path.exists(DICOMWEB_PLUGIN):
        return (
            f"Orthanc's DICOMweb plugin not found at {DICOMWEB_PLUGIN} "
            "(apt-get install orthanc-dicomweb)"
        )
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    """One Orthanc process over a folder; ``start()``, ``stop()``, ``kill()``.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:PORT`` (Orthanc's REST API).
    dicomweb_url : str
        The DICOMweb root, ``url + "/dicom-web"``.
    username, password : str
        The generated credentials.
    """

    def __init__(self, folder, **config):
        self.folder = Path(folder)
        self.extra_config = config
        self.username = "skal-" + secrets.token_hex(4)
        self.password = secrets.token_urlsafe(16)
        self.process = None
        self.port = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self):
        return self.url + "/dicom-web"

    @property
    def auth(self):
        return (self.username, self.password)

    def _config(self):
        storage = str(self.folder / "storage")
        return {
            "Name": "skal-cxr-tests",
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": self.port,
            "HttpServerEnabled": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.username: self.password},
            "DicomServerEnabled": False,
            "HttpThreadsCount": 8,
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            **self.extra_config,
        }

    def start(self, timeout=30):
        """Start the server (a fresh port each time) and wait until it answers."""
        import requests

        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # another process may take the free port first
            self.port = _free_port()
            config = self.folder / "orthanc.json"
            config.write_text(json.dumps(self._config(), indent=1))
            with open(self.folder / "orthanc.log", "ab") as log:  # the child keeps its copy
                self.process = subprocess.Popen(
                    [ORTHANC, str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.folder,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    r = requests.get(self.url + "/system", auth=self.auth, timeout=2)
                    if r.ok:
                        return self
                except requests.ConnectionError:
                    pass
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"Orthanc did not start; see {self.folder / 'orthanc.log'}")

    def stop(self):
        """Stop the server (SIGTERM, then SIGKILL after 20 s); idempotent."""
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def kill(self):
        """Kill the server at once, as a crash or a network cut would."""
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()

    def upload(self, datasets):
        """Store pydicom datasets through Orthanc's REST API; return their SOP UIDs."""
        from io import BytesIO

        import requests

        uids = []
        with requests.Session() as session:
            session.auth = self.auth
            for ds in datasets:
                buffer = BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                r = session.post(self.url + "/instances", data=buffer.getvalue(), timeout=30)
                r.raise_for_status()
                uids.append(str(ds.SOPInstanceUID))
        return uids

    def delete(self, sop_uid):
        """Delete one instance, given its SOP Instance UID."""
        import requests

        with requests.Session() as session:
            session.auth = self.auth
            r = session.post(self.url + "/tools/lookup", data=sop_uid, timeout=10)
            r.raise_for_status()
            (found,) = [f for f in r.json() if f["Type"] == "Instance"]
            session.delete(f"{self.url}/instances/{found['ID']}", timeout=10).raise_for_status()

    def count(self, level="instances"):
        """How many patients / studies / series / instances the server holds."""
        import requests

        r = requests.get(f"{self.url}/{level}", auth=self.auth, timeout=10)
        r.raise_for_status()
        return len(r.json())


def make_cr_films(
    pixels,
    n_patients,
    studies_per_patient=2,
    *,
    first_date="20240105",
    patient_prefix="PAT",
    random_state=0,
):
    """CR datasets of ``pixels``: patients with a baseline study and follow-ups.

    Parameters
    ----------
    pixels : ndarray of shape (n_films, H, W), float in [0, 1] or uint8
        One film per study; ``n_films`` must be at least
        ``n_patients * studies_per_patient``.
    n_patients, studies_per_patient : int
    first_date : str
        StudyDate (``YYYYMMDD``) of the first patient's baseline; each study
        comes 30 days after the previous one.
    patient_prefix : str
        Patient ``k`` is ``f"{patient_prefix}{k:04d}"``, named ``DOE^K``.
    random_state : int
        Seeds the UIDs (``pydicom.uid.generate_uid`` entropy) and the views.

    Returns
    -------
    datasets : list of pydicom.Dataset
        In patient then date order; ``PatientID``, ``PatientName``,
        ``StudyInstanceUID``, ``SeriesInstanceUID``, ``SOPInstanceUID``,
        ``StudyDate``, ``ViewPosition`` (``PA`` or ``AP``) set.
    """
    import datetime

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    cr_storage = "1.2.840.10008.5.1.4.1.1.1"
    rng = np.random.default_rng(random_state)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        pixels = np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    start = datetime.date(int(first_date[:4]), int(first_date[4:6]), int(first_date[6:]))
    tag = f"{patient_prefix}-{random_state}-"
    films = []
    for p in range(n_patients):
        patient = f"{patient_prefix}{p:04d}"
        for s in range(studies_per_patient):
            k = p * studies_per_patient + s
            date = start + datetime.timedelta(days=30 * k)
            uid = lambda what, k=k: generate_uid(entropy_srcs=[tag, what, str(k)])  # noqa: E731
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = cr_storage
            meta.MediaStorageSOPInstanceUID = uid("sop")
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = cr_storage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID = uid("study")
            ds.SeriesInstanceUID = uid("series")
            ds.PatientID = patient
            ds.PatientName = f"DOE^{patient}"
            ds.PatientBirthDate = "19600101"
            ds.PatientSex = "O"
            ds.StudyDate = ds.SeriesDate = date.strftime("%Y%m%d")
            ds.StudyTime = "101500"
            ds.AccessionNumber = f"ACC{k:06d}"
            ds.StudyID = str(k)
            ds.ReferringPhysicianName = ""
            ds.Modality = "CR"
            ds.BodyPartExamined = "CHEST"
            ds.ViewPosition = "PA" if rng.random() < 0.7 else "AP"
            ds.SeriesNumber = 1
            ds.InstanceNumber = 1
            ds.Manufacturer = "skal-cxr tests"
            image = pixels[k]
            ds.Rows, ds.Columns = image.shape
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
            ds.PixelRepresentation = 0
            ds.PixelData = np.ascontiguousarray(image).tobytes()
            films.append(ds)
    return films
