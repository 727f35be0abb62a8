"""CPU seconds of a labeling round with the view model, one process, one torch thread.

The round of a labeling project's worker (:func:`skal_cxr.labeling.worker._process.train_round`):
fit the head on the labeled images' stored features, predict the stop set, query
the next batch from a random 2,000 unlabeled images, then the reserve. The
encoder is untrained here (``max_epochs=0``; its weights do not change the
cost of a round), and its one-time cost is timed on ``--encoder-images``
images for one epoch and scaled to the pool. ``time.process_time`` of this
process, so the figures hold on an idle machine even when this one is shared.

Run from the repository root::

    python benchmarks/bench_view_round.py              # 10,000 images of 64 px
    python benchmarks/bench_view_round.py --encoder-full   # and the encoder's whole fit
"""

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

from skal_cxr._image_checks import check_images  # noqa: E402
from skal_cxr.embeddings import ContrastiveEncoder, memoized_transform  # noqa: E402
from skal_cxr.engine import ActiveLoop, RoundConfig, build_estimator  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-images", type=int, default=10_000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--labeled", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--query-size", type=int, default=100)
    p.add_argument("--encoder-images", type=int, default=512)
    p.add_argument(
        "--encoder-full",
        action="store_true",
        help="also train the encoder of the round configuration on the whole pool "
        "(all its epochs) and time that, instead of only scaling one epoch",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "view_round.json")
    return p.parse_args(argv)


def cpu(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its process CPU seconds and its wall-clock seconds."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.process_time() - c0, time.perf_counter() - t0


def _predict(learner, X):
    return learner.predict(X)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    X, y = C.make_pool(args.n_images, args.image_size)
    X = np.round(np.clip(X, 0, 1) * 255).astype(np.uint8)[:, None]  # as the image cache
    res = {"settings": vars(args) | {"out": str(args.out)}}
    config = RoundConfig.from_params(
        strategy="typicality_until_5_then_max_entropy",
        model="view",
        query_size=args.query_size,
        pool_size=2000,
    )
    sub = X[: args.encoder_images]
    _, c, w = cpu(lambda: ContrastiveEncoder(max_epochs=1, random_state=0).fit(sub))
    per_image_epoch = c / len(sub)
    epochs = config.view["max_epochs"]
    res["encoder"] = {
        "cpu_seconds_per_image_epoch": per_image_epoch,
        "measured_images": len(sub),
        "epochs": epochs,
        "cpu_seconds_for_pool": per_image_epoch * epochs * len(X),
    }
    if args.encoder_full:
        _, c, w = cpu(lambda: ContrastiveEncoder(**dict(config.view, random_state=0)).fit(X))
        res["encoder"] |= {"measured_cpu_seconds_for_pool": c, "measured_wall_seconds": w}
    encoder = ContrastiveEncoder(**dict(config.view, max_epochs=0)).fit(X[:2])

    def features():
        for start in range(0, len(X), 2048):
            memoized_transform(encoder, check_images(X[start : start + 2048]))

    _, c, w = cpu(features)
    res["pool_features_cpu_seconds"] = c
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    stop = order[-1000:]
    res["rounds"] = []
    for n in args.labeled:
        labeled = order[:n]
        est = build_estimator(config, 3, encoder=encoder)
        loop = ActiveLoop(config, X, lambda idx: y[idx], labeled, estimator=est, exclude=labeled)
        result, c, w = cpu(loop.step, args.query_size, 1, evaluate=partial(_predict, X=X[stop]))
        _, rc, rw = cpu(loop.query, args.query_size, 2)
        res["rounds"].append(
            {
                "labeled": n,
                "round_cpu_seconds": c,
                "fit_seconds": result.fit_time,
                "query_seconds": result.query_time,
                "reserve_cpu_seconds": rc,
            }
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
