"""Checkpoints that survive a kill: `tf.train.CheckpointManager` with multi-worker handling.

TensorFlow writes the checkpoint files first and then atomically replaces the small `checkpoint` index,
so a process killed while saving leaves the previous checkpoint as the latest one.
Under MultiWorkerMirroredStrategy every worker must call `save` (it is a collective), but only the chief
keeps its files; the others write into a scratch directory that is removed right after.
"""
from __future__ import annotations

import os
import shutil

import tensorflow as tf

from tfvidgan.training.strategy import is_chief, worker_index


class CheckpointKeeper:
    """Saves and restores `objects` (models, optimizers, step counter) under `directory`.

    Args:
      directory: the run's checkpoint directory (created if missing).
      strategy: the strategy the objects were created under.
      max_to_keep: how many recent checkpoints to keep.
      **objects: trackables (Keras models, optimizers, tf.Variables) by name.
    """

    def __init__(self, directory: str, strategy: tf.distribute.Strategy, max_to_keep: int = 3, **objects):
        self._chief = is_chief(strategy)
        self._directory = directory
        self._write_dir = directory if self._chief else os.path.join(
            directory, f".worker_{worker_index(strategy)}_scratch")
        self.checkpoint = tf.train.Checkpoint(**objects)
        self._manager = tf.train.CheckpointManager(self.checkpoint, self._write_dir, max_to_keep=max_to_keep)

    @property
    def latest(self) -> str | None:
        """Path prefix of the latest complete checkpoint in the chief's directory (every worker restores
        from it: shared storage), or None."""
        return tf.train.latest_checkpoint(self._directory)

    def restore_latest(self) -> str | None:
        """Restores the latest checkpoint if there is one; returns its path (None on a fresh start)."""
        path = self.latest
        if path is not None:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> str | None:
        """Saves at `step`; returns the saved path on the chief (None elsewhere)."""
        path = self._manager.save(checkpoint_number=step)
        if not self._chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
            return None
        return path
