"""A pool from a PACS: DICOMweb listing and retrieval into the image cache, in images/s.

Starts Debian's Orthanc with its DICOMweb plugin on loopback (the harness of
``tests/pacs``), loads it with ``--n`` CR films (phantoms at ``--size`` px,
12 bits stored in 16, several patients with follow-up studies) through its
REST API, then measures :func:`skal_cxr.datasets.build_dicomweb_cache` with
a query (``Modality=CR``):

1. the whole pool: QIDO-RS listing (the studies, then each study's instances),
   WADO-RS retrieval with ``--fetch-jobs`` concurrent requests into the
   local store, then the cache build (decode + resize to 64 px);
2. the same call again with nothing new (a re-run lists and returns);
3. ``--n-new`` new studies arriving, then the call again (only they are
   retrieved and decoded).

The images/s of step 1 compare with the folder build of ``bench_archive.py``
(PNG files on a local disk). Results go to ``--out`` as ``dicomweb.md`` and
``dicomweb.json``. ``--tiny`` runs at toy size in seconds (the CI smoke test).
"""

import argparse
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pacs"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # its modules, also when imported
from _orthanc import OrthancServer, make_cr_films, orthanc_missing
from _timing import timed

from skal_cxr.datasets import (
    build_dicomweb_cache,
    build_image_cache,
    dicomweb_session,
    fetch_dicomweb,
    make_cxr_phantoms,
    parse_dicomweb_query,
)
from skal_cxr.datasets._dicomweb_search import list_instances


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="films in the PACS")
    p.add_argument("--n-new", type=int, default=100, help="films arriving afterwards")
    p.add_argument("--size", type=int, default=256, help="film size (px)")
    p.add_argument("--studies-per-patient", type=int, default=2)
    p.add_argument("--fetch-jobs", type=int, default=4, help="concurrent WADO-RS requests")
    p.add_argument("--n-jobs", type=int, default=2, help="threads decoding into the cache")
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for Orthanc's storage and the cache (default: a tmp dir)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--tiny", action="store_true", help="toy sizes (smoke test)")
    args = p.parse_args(argv)
    if args.tiny:
        args.n, args.n_new, args.size = 12, 4, 32
    return args


def _films(n, size, per_patient, prefix, seed):
    X, _ = make_cxr_phantoms(n, image_size=size, random_state=seed)
    films = make_cr_films(
        np.zeros((n, 1, 1)),
        -(-n // per_patient),
        per_patient,
        patient_prefix=prefix,
        random_state=seed,
    )[:n]
    for ds, image in zip(films, X):
        pixels = np.rint(image * 4095).astype(np.uint16)  # 12 bits stored in 16
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ds.PixelData = pixels.tobytes()
    return films


def main(argv=None):
    args = parse_args(argv)
    reason = orthanc_missing()
    if reason:
        raise SystemExit(reason)
    work = Path(tempfile.mkdtemp(prefix="skal_cxr_dicomweb_")) if args.work is None else args.work
    shutil.rmtree(work / "cache", ignore_errors=True)
    server = OrthancServer(work / "orthanc")
    server.start()
    rows = []
    try:
        secret = work / "secret"
        secret.write_text(f"{server.username}:{server.password}")
        films = _films(args.n, args.size, args.studies_per_patient, "BEN", 0)
        upload_s, _ = timed(lambda: server.upload(films))
        mb = sum(len(ds.PixelData) for ds in films) / 1e6
        connection = {"auth": "basic", "credentials_file": secret, "fetch_n_jobs": args.fetch_jobs}
        session = dicomweb_session("basic", credentials_file=secret)
        list_s, listed = timed(
            lambda: list_instances(
                server.dicomweb_url, session, parse_dicomweb_query("Modality=CR")
            )
        )
        rows.append(
            {
                "what": f"QIDO-RS listing of {len(listed):,} instances",
                "n": len(listed),
                "seconds": list_s,
            }
        )

        def build():
            return build_dicomweb_cache(
                server.dicomweb_url,
                work / "cache",
                64,
                "Modality=CR",
                n_jobs=args.n_jobs,
                **connection,
            )

        s, (cache, pool) = timed(build)
        assert len(cache) == args.n and pool.n_fetched == args.n
        rows.append(
            {
                "what": f"all {args.n:,} films: list + retrieve ({args.fetch_jobs} "
                f"requests at a time) + cache build ({args.n_jobs} threads)",
                "n": args.n,
                "seconds": s,
            }
        )
        # the parts: retrieval alone, and the cache build alone from the local store
        shutil.rmtree(work / "cache")
        s, pool = timed(
            lambda: fetch_dicomweb(
                server.dicomweb_url,
                work / "cache" / "dicom",
                "Modality=CR",
                auth="basic",
                credentials_file=secret,
                n_jobs=args.fetch_jobs,
            )
        )
        rows.append({"what": "of which list + retrieve into the store", "n": args.n, "seconds": s})
        s, _ = timed(lambda: build_image_cache(pool.files, work / "cache", 64, n_jobs=args.n_jobs))
        rows.append(
            {
                "what": f"of which the cache build from the store ({args.n_jobs} "
                "threads; DICOM decode + resize)",
                "n": args.n,
                "seconds": s,
            }
        )
        s, (_, pool) = timed(build)
        assert pool.n_fetched == 0
        rows.append(
            {"what": "again, nothing new (list, compare, return)", "n": args.n, "seconds": s}
        )
        server.upload(_films(args.n_new, args.size, args.studies_per_patient, "NEW", 1))
        s, (cache, pool) = timed(build)
        assert pool.n_fetched == args.n_new and len(cache) == args.n + args.n_new
        rows.append(
            {
                "what": f"{args.n_new} new films arrived: list + retrieve + decode the new ones",
                "n": args.n_new,
                "seconds": s,
            }
        )
    finally:
        server.stop()
    for r in rows:
        r["images_per_s"] = r["n"] / r["seconds"] if r["seconds"] else None
    result = {
        "settings": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": platform.platform(),
            "python": platform.python_version(),
            "upload_seconds": upload_s,
            "pixel_mb": mb,
        },
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dicomweb.json").write_text(json.dumps(result, indent=1))
    lines = [
        "## A pool from a PACS (DICOMweb, Orthanc on loopback)",
        "",
        f"{args.n:,} CR films of {args.size} px ({mb:.0f} MB of pixels), cached at 64 px.",
        "",
        "| what | images | seconds | images/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['what']} | {r['n']:,} | {r['seconds']:.2f} | {r['images_per_s']:,.0f} |"
        for r in rows
    ]
    text = "\n".join(lines) + "\n"
    (args.out / "dicomweb.md").write_text(text)
    print(text)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
