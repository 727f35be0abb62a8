"""The confirmatory study's arms, data, encoders and runs (``bench_confirmatory.py``).

Declared in docs/benchmarks/confirmatory_study.rst. Every arm starts from
zero labels, picks its first 10 labels as declared (:func:`first_labels`)
and is run to each checkpoint through the engine's round loop
(:class:`skal_cxr.engine.ActiveLoop`); at each checkpoint the arm's
estimator is fitted afresh on the labeled set and :func:`measure` records
its test metrics. The study's data sets, the CNN arms (C, D), their
estimator and the metrics of a fitted model are the low-budget study's
(``_low_budget.py``). Each (data set, seed, arm) is one JSON record,
written atomically when it is done (:func:`run_study`), so that a stopped
run continues where it stopped.
"""

import json
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from _low_budget import DEFAULT, arm_strategy, checkpoints, evaluate, load_data, make_estimator
from _low_budget import first_labels as low_budget_first_labels
from _simulation import use_shared_data

from skal_cxr import ActiveLearner, FrozenViewClassifier
from skal_cxr._atomic import atomic_write
from skal_cxr._random import derived_rng
from skal_cxr.calibration import EMPriorCorrection
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.engine import ActiveLoop
from skal_cxr.metrics import classification_metrics
from skal_cxr.strategies import (
    STRATEGIES,
    badge,
    class_quotas,
    dropquery,
    label_free_query,
    random_sampling,
    typicality_until_k_then,
)

__all__ = [
    "ARMS",
    "VIEW_ARMS",
    "DATASETS",
    "ECE_AT",
    "Settings",
    "SMOKE",
    "study_checkpoints",
    "study_data",
    "pool_encoder",
    "arm_estimator",
    "arm_strategy_of",
    "first_labels",
    "stratified_oracle",
    "measure",
    "run_arm",
    "run_full",
    "record_path",
    "run_study",
    "load_study",
]

#: the declared arms: (estimator, strategy) in words, for the report
ARMS = {
    "A": "view head, typicality until 5 per class then max entropy",
    "B": "view head, random",
    "C": "CNN from pixels, random",
    "D": "CNN from pixels, typicality then max entropy (today's default)",
    "E": "view head, guard then BADGE",
    "F": "view head, guard then DropQuery",
    "G": "view head, stratified random (oracle)",
}
VIEW_ARMS = ("A", "B", "E", "F", "G")
#: the declared data sets: (low-budget name, phantom side in pixels)
DATASETS = {
    "pneumoniamnist": ("pneumoniamnist", 28),
    "imbalanced": ("imbalanced", 28),
    "phantoms28": ("phantoms", 28),
    "phantoms64": ("phantoms", 64),
}
#: checkpoints at which calibration (raw, EM on the pool, PriorCorrection on val) is measured
ECE_AT = (20, 40, 100)
GUARD_K = 5


@dataclass(frozen=True)
class Settings:
    """What a run trains: the encoder, the head, the CNN (``smoke``: seconds, not hours)."""

    encoder_epochs: int = 5
    encoder_width: int = 16
    fine_tune: bool = False
    fine_tune_from: int = 100
    head_steps: int = 300
    n_mc_samples: int = 20
    smoke: bool = False

    def tag(self):
        """Short name of the encoder setting (``e5_w16``, ``+ft`` when fine-tuning)."""
        return f"e{self.encoder_epochs}_w{self.encoder_width}" + ("+ft" if self.fine_tune else "")


#: the smoke test's settings: every code path on tiny data
SMOKE = dict(
    encoder_epochs=1, encoder_width=4, fine_tune_from=20, head_steps=20, n_mc_samples=4, smoke=True
)


def study_checkpoints(smoke=False):
    """10, 20, ..., 100, then queries of 50 to 300 (smoke: 10, 20, 40)."""
    return [10, 20, 40] if smoke else checkpoints(100, max_labels=300)


def study_data(name, smoke=False):
    """A declared data set (``smoke``: 150 pool, 60 val and 60 test images of it)."""
    use_shared_data()
    base, size = DATASETS[name]
    data = load_data(base, image_size=size)
    data.name = name
    if smoke:
        rng = np.random.default_rng(0)
        for split, n in (("pool", 150), ("val", 60), ("test", 60)):
            X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
            keep = np.sort(rng.choice(len(y), min(n, len(y)), replace=False))
            setattr(data, f"X_{split}", X[keep])
            setattr(data, f"y_{split}", y[keep])
    return data


def pool_encoder(data, seed, settings, cache_dir=None):
    """The pool's contrastive encoder of a seed, and the CPU seconds its training took.

    Trained once per (data set, seed, epochs, width) and kept as a pickle
    under ``cache_dir`` (with its CPU time), so that other arms, a rerun
    and the pilot's fine-tuning check reuse it.
    """
    name = f"{data.name}_seed{seed}_e{settings.encoder_epochs}_w{settings.encoder_width}"
    path = None if cache_dir is None else Path(cache_dir) / f"{name}.pkl"
    if path is not None and path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    cpu, wall = time.process_time(), time.perf_counter()
    encoder = ContrastiveEncoder(
        width=settings.encoder_width, max_epochs=settings.encoder_epochs, random_state=seed
    ).fit(data.X_pool)
    cost = {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, pickle.dumps((encoder, cost)))
    return encoder, cost


def arm_estimator(arm, seed, n_classes, settings, encoder=None):
    """Arm A's view head (arms A, B, E, F, G) or the low-budget study's CNN (C, D)."""
    if arm not in VIEW_ARMS:
        return make_estimator(seed, n_classes, quick=settings.smoke)
    return FrozenViewClassifier(
        encoder,
        classes=np.arange(n_classes),
        class_weight="balanced",
        dropout=0.5,
        n_steps=settings.head_steps,
        n_mc_samples=settings.n_mc_samples,
        fine_tune="trunk_lr" if settings.fine_tune else None,
        fine_tune_from=settings.fine_tune_from,
        trunk_lr_factor=0.1,
        random_state=seed,
    )


def stratified_oracle(y_pool, labeled, seed):
    """Arm G's strategy: each query drawn at random by class (uses the labels; reference only).

    The query is split as evenly as the unlabeled images allow over the
    classes (:func:`~skal_cxr.strategies.class_quotas` on the true labels),
    and each class's share is drawn at random.

    Parameters
    ----------
    y_pool : ndarray of shape (n_pool,)
        The pool's labels (the oracle's knowledge).
    labeled : list of int
        The loop's labeled positions, read at each query.
    seed : int
        Seeds the draws.

    Returns
    -------
    strategy : callable
        A query strategy; the pool it is given is the positions not in ``labeled``.
    """
    rng = derived_rng(seed, 11)
    n_classes = int(y_pool.max()) + 1

    def stratified_random(learner, X_pool, n_instances=1, **params):
        y = y_pool[np.setdiff1d(np.arange(len(y_pool)), labeled)]
        assert len(y) == len(X_pool)
        quotas = class_quotas(y, n_instances, n_classes)
        picks = [rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in enumerate(quotas)]
        return np.concatenate(picks).astype(np.int64)

    return stratified_random


def arm_strategy_of(arm, y_pool=None, labeled=None, seed=0):
    """The query strategy of an arm (G's reads ``labeled``, the loop's list, as it grows)."""
    if arm == "A":
        return STRATEGIES["typicality_until_5_then_max_entropy"]
    if arm in ("B", "C"):
        return random_sampling
    if arm == "D":
        return arm_strategy(DEFAULT)
    if arm == "E":
        return typicality_until_k_then(badge, k=GUARD_K)
    if arm == "F":
        return typicality_until_k_then(dropquery, k=GUARD_K)
    if arm == "G":
        return stratified_oracle(y_pool, labeled, seed)
    raise ValueError(f"unknown arm {arm!r}")


def first_labels(arm, strategy, estimator, data, n, seed):
    """The declared first ``n`` labels of an arm.

    A, E and F: the guard (typicality in the encoder's view, label-free);
    B and C: the same label-free random draw; D: the low-budget study's
    default (typicality on pixels); G: drawn by class (the oracle).
    """
    if arm in ("A", "E", "F"):
        rng = derived_rng(seed, 7)
        return label_free_query(strategy, data.X_pool, n, random_state=rng, estimator=estimator)[0]
    name = {"B": "random", "C": "random", "D": DEFAULT, "G": "stratified"}[arm]
    return low_budget_first_labels(name, strategy, data, n, seed)


def measure(model, data, labeled):
    """The low-budget study's test metrics, with ECE after EM on the unlabeled pool.

    ``ece_em``: the class prior of the unlabeled pool re-estimated by EM
    (Saerens et al. 2002; the training prior is uniform, the loss being
    class-weighted) and the test probabilities moved to it;
    ``ece_corrected``: :class:`~skal_cxr.calibration.PriorCorrection` on
    the val split (:func:`_low_budget.evaluate`).
    """
    out = evaluate(model, data)
    if len(labeled) in ECE_AT:
        unlabeled = np.setdiff1d(np.arange(len(data.y_pool)), labeled)
        em = EMPriorCorrection().fit(model.predict_proba(data.X_pool[unlabeled]))
        corrected = em.transform(model.predict_proba(data.X_test))
        out["ece_em"] = classification_metrics(data.y_test, corrected)["ece"]
        out["em_prior"] = em.prior_.tolist()
    return out


def run_arm(arm, seed, data, points, settings, encoder=None):
    """One arm and seed, through the engine's round loop: its record, a curve of checkpoints."""
    n_classes = int(data.y_pool.max()) + 1
    estimator = arm_estimator(arm, seed, n_classes, settings, encoder)
    labeled = []
    strategy = arm_strategy_of(arm, data.y_pool, labeled, seed)
    learner = ActiveLearner(estimator, query_strategy=strategy, random_state=seed)
    start, cpu = time.perf_counter(), time.process_time()
    labeled.extend(int(i) for i in first_labels(arm, strategy, estimator, data, points[0], seed))
    loop = ActiveLoop(None, data.X_pool, lambda idx: data.y_pool[idx], labeled, learner=learner)
    loop.labeled = labeled  # one list: arm G's oracle reads the labeled set as it grows

    def evaluate_round(fitted):
        return measure(fitted.estimator_, data, loop.labeled)

    curve = []
    for k, n in enumerate(points):
        n_next = points[k + 1] - n if k + 1 < len(points) else 0
        result = loop.step(n_next, evaluate=evaluate_round)
        assert result.n_labeled == n
        counts = np.bincount(data.y_pool[list(result.labeled)], minlength=n_classes)
        curve.append(
            {
                "n_labeled": int(n),
                "class_counts": counts.tolist(),
                "elapsed_s": time.perf_counter() - start,
                **result.evaluation,
            }
        )
    order = data.y_pool[loop.labeled]
    seen = [len(set(order[: i + 1].tolist())) for i in range(len(order))]
    all_classes = next((i + 1 for i, s in enumerate(seen) if s == n_classes), None)
    return {
        "curve": curve,
        "labels_all_classes": all_classes,
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


def run_full(kind, seed, data, settings, encoder=None):
    """The full-data reference of a seed: the CNN (``full_cnn``) or arm A's head (``full_view``)."""
    n_classes = int(data.y_pool.max()) + 1
    arm = "C" if kind == "full_cnn" else "A"
    start, cpu = time.perf_counter(), time.process_time()
    model = arm_estimator(arm, seed, n_classes, settings, encoder).fit(data.X_pool, data.y_pool)
    return {
        **evaluate(model, data),
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


def record_path(out, data, seed, arm):
    """Where the record of a (data set, seed, arm) is kept."""
    return Path(out) / "records" / data / f"seed{seed}" / f"{arm}.json"


def run_study(out, datasets, seeds, arms, settings, log=print, encoders=None):
    """Run every missing (data set, seed, arm) record into ``out``; return how many ran.

    Seeds are the outer loop, so that a run stopped part-way leaves whole
    seeds. The encoder of a (data set, seed) is trained once and kept under
    ``encoders`` (default ``out/encoders``) with its CPU time; the
    full-data references (``full_cnn``, ``full_view``) are arms of their own.
    """
    out = Path(out)
    encoders = out / "encoders" if encoders is None else Path(encoders)
    points = study_checkpoints(settings.smoke)
    ran = 0
    for seed in seeds:
        for name in datasets:
            todo = [a for a in arms if not record_path(out, name, seed, a).exists()]
            if not todo:
                continue
            data = study_data(name, settings.smoke)
            encoder = cost = None
            if any(a in VIEW_ARMS or a == "full_view" for a in todo):
                encoder, cost = pool_encoder(data, seed, settings, encoders)
            for arm in todo:
                if arm.startswith("full"):
                    result = run_full(arm, seed, data, settings, encoder)
                else:
                    result = run_arm(arm, seed, data, points, settings, encoder)
                view = arm in VIEW_ARMS or arm == "full_view"
                record = {
                    "data": name,
                    "seed": seed,
                    "arm": arm,
                    "settings": asdict(settings),
                    "encoder_cpu_s": cost["cpu_s"] if view else None,
                    "encoder_wall_s": cost["wall_s"] if view else None,
                    **result,
                }
                path = record_path(out, name, seed, arm)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, json.dumps(record, indent=1) + "\n")
                ran += 1
                last = result["curve"][-1]["auroc"] if "curve" in result else result["auroc"]
                log(f"{name} seed {seed} {arm}: {result['elapsed_s']:.1f} s, AUROC {last:.3f}")
    return ran


def load_study(out):
    """Every record under ``out/records``, as a list of dicts."""
    files = sorted((Path(out) / "records").glob("*/seed*/*.json"))
    return [json.loads(p.read_text()) for p in files]
