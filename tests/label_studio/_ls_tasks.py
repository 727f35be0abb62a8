"""Helpers of the Label Studio backend's tests: small PNG tasks, fast settings, events."""

import json

import numpy as np
from PIL import Image

#: A tiny network and few MC samples: a training takes about a second on CPU.
FAST_ROUNDS = {
    "n_mc_samples": 5,
    "estimator": {"module__width": 4, "module__n_blocks": 2, "batch_size": 8, "device": "cpu"},
    "training": {"max_epochs": 2, "min_train_steps": 1},
}
CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Choices name="diagnosis" toName="image" choice="single">
    <Choice value="normal"/>
    <Choice value="pneumonia"/>
  </Choices>
</View>"""


def write_pngs(folder, n, seed=0, size=16):
    """``n`` PNGs in ``folder``: image ``i`` is dark (even ``i``) or bright (odd ``i``).

    The first pixel of image ``i`` is ``i``, so that a test can tell the
    images apart from their pixels.

    Returns
    -------
    names : list of str
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        base = 60 if i % 2 == 0 else 180
        pixels = np.clip(base + rng.normal(0, 25, (size, size)), 0, 255).astype(np.uint8)
        pixels[0, 0] = i
        name = f"img_{i:03d}.png"
        Image.fromarray(pixels).save(folder / name)
        names.append(name)
    return names


def local_task(i, name):
    """A Label Studio task whose image is in local storage."""
    return {"id": i, "data": {"image": f"/data/local-files/?d=images/{name}"}, "project": 1}


def make_backend_dir(tmp_path, n=12, **overrides):
    """``(folder, document_root, tasks)``: a backend folder with fast settings, 12 tasks."""
    root = tmp_path / "root"
    names = write_pngs(root / "images", n)
    folder = tmp_path / "backend"
    folder.mkdir()
    settings = {
        "rounds": FAST_ROUNDS,
        "image_size": 16,
        "retrain_every": 4,
        "document_root": str(root),
        "cold_start": "typicality",
        **overrides,
    }
    (folder / "backend.json").write_text(json.dumps(settings))
    tasks = [local_task(i + 1, name) for i, name in enumerate(names)]
    return folder, root, tasks


def annotation_event(task, annotation_id, label, updated_at, action="ANNOTATION_CREATED"):
    """Label Studio's webhook payload for an annotation of ``task`` choosing ``label``."""
    return {
        "action": action,
        "annotation": {
            "id": annotation_id,
            "task": task["id"],
            "updated_at": updated_at,
            "was_cancelled": False,
            "result": [
                {
                    "from_name": "diagnosis",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            ],
        },
        "task": task,
        "project": {"id": 1},
    }
