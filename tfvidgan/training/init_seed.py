"""Weight initialisation as a function of one seed (`--init_seed`), so a run can be repeated.

Keras 3 gives every initializer made without a seed one drawn from Python's `random` when the initializer is
made (`keras.random` `make_default_seed`); tfvidgan's layers use such initializers (all but the fixed random
projections, seeded by `projection_seed`). A task builds its models inside `seeded_initializers(init_seed)`,
so the same config builds the same initial weights, in any process, whatever ran before in it. With the
input pipeline's `--data_seed` and the stateless noise (`tfvidgan.training.noise`) that makes a run's inputs,
noise and starting point functions of its flags; float reductions on many threads can still differ in the
last bits between runs, and GAN training amplifies such differences over thousands of steps.
"""
from __future__ import annotations

import contextlib
import random


@contextlib.contextmanager
def seeded_initializers(seed: int):
    """Inside, Keras initializers created without a seed draw theirs from `seed` (in creation order); Python's
    `random` state is restored on exit, so nothing else in the process is reseeded."""
    state = random.getstate()
    random.seed(int(seed))
    try:
        yield
    finally:
        random.setstate(state)
