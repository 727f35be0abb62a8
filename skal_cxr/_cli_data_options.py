"""The data options of ``skal-cxr simulate``, each declared once (see :mod:`skal_cxr._options`).

Each names where its value goes in ``simulate``'s ``data`` argument:
``data.folder.KEY`` (an image folder), ``data.phantoms.KEY`` or
``data.medmnist.KEY``, whose defaults are the sources' (``DATA_DEFAULTS``).
"""

from ._cli_types import _float_list, _str_list
from ._options import Option

__all__ = ["data_options"]


def _phantom_split(phantoms):
    test, val = phantoms["test_size"], phantoms["val_size"]
    split = "/".join(str(round(100 * f)) for f in (1 - test - val, val, test))
    return f"{split}% pool/validation/test ({phantoms['n_samples']})"


def _choices(name):
    """A choices list of :mod:`skal_cxr.datasets._sources`, read when the parser is built."""
    from .datasets import _sources

    return getattr(_sources, name)


def data_options():
    """The options of ``simulate``'s data group.

    Returns
    -------
    options : list of Option
    """
    data, folder = "data", "data.folder."
    return [
        Option(
            ("--data",),
            to="data.source",
            metavar="SOURCE",
            group=data,
            help="pneumoniamnist (default: real pediatric CXRs shipped with skal_cxr, "
            "normal vs pneumonia), 'phantoms' (generated, 3 severity classes; implied by "
            "--n-phantoms/--phantom-size), another MedMNIST name such as "
            "medmnist:chestmnist (read from $SKAL_CXR_DATA), or a path to its .npz file",
        ),
        Option(
            ("--n-phantoms",),
            to="data.phantoms.n_samples",
            type=int,
            metavar="N",
            group=data,
            default_at="data.phantoms",
            show=_phantom_split,
            help="phantoms to generate, split {default}",
        ),
        Option(
            ("--phantom-size",),
            to="data.phantoms.image_size",
            type=int,
            metavar="PX",
            group=data,
            help="phantom image size ({default})",
        ),
        Option(
            ("--n-raters",),
            to="data.phantoms.n_raters",
            type=int,
            metavar="N",
            group=data,
            help="phantoms: simulate N raters (3 to 6 typical) whose disagreement "
            "concentrates near class boundaries; labels are their majority vote",
        ),
        Option(
            ("--max-pool",),
            to="data.medmnist.max_pool",
            type=int,
            metavar="N",
            group=data,
            help="MedMNIST: subsample the train split to N pool images (stratified)",
        ),
        Option(
            ("--csv",),
            to=folder + "csv",
            metavar="CSV",
            group=data,
            help="image folder: CSV of file names and labels",
        ),
        Option(
            ("--image-dir",),
            to=folder + "image_dir",
            metavar="DIR",
            group=data,
            help="image folder: folder of the images",
        ),
        Option(
            ("--image-column",),
            to=folder + "image_column",
            metavar="COL",
            group=data,
            help="CSV column of file names ({default})",
        ),
        Option(
            ("--label-columns",),
            to=folder + "label_columns",
            type=_str_list,
            metavar="A,B",
            group=data,
            help="CSV label column(s), one per rater; several are combined by --consensus",
        ),
        Option(
            ("--score-column",),
            to=folder + "score_column",
            metavar="COL",
            group=data,
            help="CSV column of a numeric score per image, cut into classes by --bins "
            "(instead of --label-columns)",
        ),
        Option(
            ("--bins",),
            to=folder + "bins",
            type=_float_list,
            metavar="E1,E2",
            group=data,
            help="increasing edges turning numeric scores or ratings into classes "
            "0..len(bins): class i when E_i <= score < E_i+1",
        ),
        Option(
            ("--classes",),
            to=folder + "classes",
            type=_str_list,
            metavar="C1,C2",
            group=data,
            help="the labels in ordinal order, least to most severe (for example "
            "none,mild,severe); consensus ties and macro MAE follow this order; with "
            "--bins, the names of the bins (default: sorted labels)",
        ),
        Option(
            ("--consensus",),
            to=folder + "consensus",
            choices=list(_choices("CONSENSUS")),
            group=data,
            help="how several raters' labels become one: majority (ties to the more "
            "severe), mean (rounded half up) or max (majority)",
        ),
        Option(
            ("--on-error",),
            to=folder + "on_error",
            choices=list(_choices("ON_ERROR")),
            group=data,
            help="bad CSV rows or images: stop listing them all, or skip and report "
            "them ({default})",
        ),
        Option(
            ("--group-column",),
            to=folder + "group_column",
            metavar="COL",
            group=data,
            help="CSV patient column: pool, validation and test split by patient",
        ),
        Option(
            ("--image-size",),
            to=folder + "image_size",
            type=int,
            metavar="PX",
            group=data,
            help="image folder: resize to PX ({default})",
        ),
        Option(
            ("--duplicates",),
            to=folder + "duplicates",
            choices=_choices("DUPLICATES"),
            group=data,
            help="image folder: a file or image listed twice is an error (raise), or "
            "only its first row is used (keep_first)",
        ),
        Option(
            ("--csv-encoding",),
            to=folder + "encoding",
            dest="encoding",
            metavar="ENC",
            group=data,
            help="image folder: encoding of the CSV, e.g. cp1252 (UTF-8, or UTF-16 with "
            "a byte-order mark)",
        ),
        Option(
            ("--csv-delimiter",),
            to=folder + "delimiter",
            dest="delimiter",
            metavar="CHAR",
            group=data,
            help="image folder: delimiter of the CSV (default: the first of , ; tab | "
            "that gives the needed columns)",
        ),
        Option(
            ("--cache-dir",),
            to=folder + "cache_dir",
            metavar="DIR",
            group=data,
            help="image folder: decode the images once into this on-disk cache and read "
            "them from it (memory stays flat however large the folder)",
        ),
        Option(
            ("--max-pixels",),
            to="max_pixels",
            type=int,
            metavar="N",
            group=data,
            help="image folder: refuse images of more than N pixels before decoding "
            "them (default 50000000, or $SKAL_CXR_MAX_PIXELS)",
        ),
        Option(
            ("--verify-cache",),
            to=folder + "verify_cache",
            action="store_const",
            const=True,
            default=None,
            group=data,
            help="image folder with --cache-dir: hash every image file again instead "
            "of trusting unchanged size, times and inode",
        ),
    ]
