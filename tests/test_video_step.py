"""benchmarks.video_step: one variant per costly option the config turns on, each timed."""
import dataclasses

from conftest import tiny_frames_export, tiny_video_config

from benchmarks.video_step import seconds_per_step, variants


def test_one_variant_per_option_turned_on_each_with_that_option_alone_off(tmp_path):
    plain = tiny_video_config(tiny_frames_export(tmp_path), num_discriminators=1)
    assert set(variants(plain)) == {"config"}  # nothing costly on, one discriminator
    config = dataclasses.replace(plain, num_discriminators=4, late_motion_match_weight=2.0, late_motion_length=8,
                                 late_motion_start_step=5, centroid_acceleration_match_weight=1.0,
                                 discriminator_input="clips_and_centroid_accelerations", smoothness_weight=3.0,
                                 finetune_frames_generator=True)
    out = variants(config)
    assert set(out) == {"config", "no_late_motion_term", "no_centroid_acceleration_match", "no_smoothness",
                        "frozen_frames_generator", "discriminator_input_clips_and_differences",
                        "half_the_discriminators"}
    assert out["config"] is config
    for name, variant in out.items():  # each differs from the config in exactly one field
        changed = [f.name for f in dataclasses.fields(config) if getattr(variant, f.name) != getattr(config, f.name)]
        assert len(changed) == (0 if name == "config" else 1), (name, changed)
    assert out["half_the_discriminators"].num_discriminators == 2


def test_every_variant_is_timed_every_round(tmp_path):
    config = tiny_video_config(tiny_frames_export(tmp_path), smoothness_weight=1.0)
    times = seconds_per_step(variants(config), batch_size=2, rounds=2, steps=1, first_step=0)
    assert set(times) == {"config", "no_smoothness", "half_the_discriminators"}
    assert all(len(t) == 2 and all(s > 0 for s in t) for t in times.values())
