"""The results table of `python -m tfvidgan.reproduce`: stage wall times and the evaluation reports' key numbers.

`build_results(config, markers, evaluations)` → a JSON-able dict; `to_markdown(results, workdir)` → the same
as Markdown tables. Reads only the stage markers and the JSON written by `evaluate_frames` / `evaluate_video`;
a number a report does not have is shown as "–" (null in the JSON).
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import os

from tfvidgan.json_report import machine

FRAME_ROWS = (("real", "real (held out)"), ("generated", "generated"),
              ("generated_raw_weights", "generated, raw weights (no EMA)"),
              ("generated_rejection", "generated, discriminator rejection sampling"),
              ("untrained_generator", "untrained generator"),
              ("collapsed", "collapsed (one real frame repeated)"))
FRAME_COLUMNS = ("fraction_expected_count", "count_mean", "blob_area_mean", "blob_area_std", "frechet_distance")
VIDEO_ROWS = (("real", "real (held out)"), ("generated", "generated"),
              ("latent_interpolation", "latent interpolation"), ("independent_latents", "independent latents"),
              ("static", "static (first real frame repeated)"), ("collapsed", "collapsed (one real clip repeated)"))
VIDEO_COLUMNS = ("fraction_expected_count_frames", "mean_count_changes", "free_flight_second_difference",
                 "mean_speed", "fraction_steps_in_speed_band", "consecutive_binarized_mse", "frechet_distance")
LONG_COLUMNS = VIDEO_COLUMNS[:-1]


def _pick(row: dict | None, columns) -> dict:
    row = row or {}
    return {k: row.get(k) for k in columns}


def _frames_table(report: dict | None) -> dict | None:
    if not report:
        return None
    settings = report.get("settings", {})
    return {"expected_balls": settings.get("expected_balls"), "num_samples": settings.get("num_samples"),
            "rows": {row: _pick(report[row], FRAME_COLUMNS) for row, _ in FRAME_ROWS if row in report}}


def _video_table(report: dict | None) -> dict | None:
    if not report:
        return None
    settings = report.get("settings", {})
    rows = {}
    for row, _ in VIDEO_ROWS:
        if row in report:
            rows[row] = _pick(report[row], VIDEO_COLUMNS)
            rows[row]["path_length_ratio"] = (report[row].get("trajectory") or {}).get("path_length_ratio")
    table = {"expected_balls": settings.get("expected_balls"), "num_samples": settings.get("num_samples"),
             "num_frames": settings.get("num_frames"), "rows": rows}
    if "fg_swap" in report:
        table["fg_swap"] = report["fg_swap"]
    if "long_video" in report:
        long = report["long_video"]
        table["long_video"] = {"num_frames": long.get("num_frames"), "window": long.get("window"),
                               "first": _pick(long.get("first"), LONG_COLUMNS),
                               "last": _pick(long.get("last"), LONG_COLUMNS),
                               "relative_change": long.get("relative_change")}
    if report.get("isomap", {}).get("plot"):
        table["isomap_plot"] = report["isomap"]["plot"]
    return table


def build_results(config, markers: dict, evaluations: dict) -> dict:
    """Args: the `ReproduceConfig`, `{stage: marker dict or None}`, `{name: evaluation report or None}` for
    "frames", "frames_1ball", "video", "video_fg_swap". Returns the results dict written as results.json."""
    stages = []
    for stage, marker in markers.items():
        marker = marker or {}
        stages.append({"stage": stage, "done": bool(marker), "step": marker.get("step"),
                       "start_step": marker.get("start_step"), "wall_seconds": marker.get("wall_seconds"),
                       "total_wall_seconds": marker.get("total_wall_seconds", marker.get("wall_seconds")),
                       "steps_per_second": marker.get("steps_per_second"), "finished": marker.get("finished")})
    total = sum(s["total_wall_seconds"] or 0.0 for s in stages)
    figures = (markers.get("figures") or {}).get("outputs") or {}
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("progress_seconds", "dry_run", "command")}
    return {
        "profile": config.profile, "workdir": config.workdir, "command": config.command, "machine": machine(),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": settings, "stages": stages, "total_wall_seconds": total,
        "frames": _frames_table(evaluations.get("frames")),
        "frames_1ball": _frames_table(evaluations.get("frames_1ball")),
        "video": _video_table(evaluations.get("video")),
        "fg_swap": _video_table(evaluations.get("video_fg_swap")),
        "figures": {k: v for k, v in figures.items() if isinstance(v, str)},
    }


def _bfloat16_note(m: dict) -> str:
    """", bfloat16 units: amx_bf16, ..." when the report's machine lists any (they decide what
    --mixed_precision does to the wall times); "" otherwise."""
    units = m.get("cpu_bfloat16")
    return f", bfloat16 units: {', '.join(units)}" if units else ""


def _num(value, digits: int = 3) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def _seconds(value) -> str:
    from tfvidgan.reproduce import format_seconds
    return "–" if value is None else format_seconds(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"] + ["| " + " | ".join(r) + " |"
                                                                                 for r in rows]


def _frames_md(title: str, table: dict | None) -> list[str]:
    if not table:
        return [f"## {title}", "", "Not evaluated.", ""]
    k = table["expected_balls"]
    header = ["frames", f"exactly {k} ball{'s' if k != 1 else ''}", "blobs per frame",
              "blob area mean ± spread (px)", "Fréchet distance"]
    rows = []
    for row, label in FRAME_ROWS:
        if row in table["rows"]:
            r = table["rows"][row]
            rows.append([label, _num(r["fraction_expected_count"]), _num(r["count_mean"]),
                         f"{_num(r['blob_area_mean'])} ± {_num(r['blob_area_std'])}", _num(r["frechet_distance"])])
    return [f"## {title} (N = {table['num_samples']} per row)", ""] + _table(header, rows) + [""]


def _video_header(k) -> list[str]:
    return ["clips", f"{k} ball{'s' if k != 1 else ''} (frames)", "count changes / clip",
            "free-flight 2nd diff (px)", "speed (px/frame)", "steps in real speed band", "binarised MSE",
            "Fréchet distance", "latent path / straight line"]


def _video_md(title: str, table: dict | None) -> list[str]:
    if not table:
        return [f"## {title}", "", "Not evaluated.", ""]
    rows = []
    for row, label in VIDEO_ROWS:
        if row in table["rows"]:
            r = table["rows"][row]
            rows.append([label] + [_num(r[c]) for c in VIDEO_COLUMNS] + [_num(r["path_length_ratio"])])
    lines = [f"## {title} ({table['num_frames']} frames, N = {table['num_samples']} per row)", ""]
    return lines + _table(_video_header(table["expected_balls"]), rows) + [""]


def to_markdown(results: dict, workdir: str = "..") -> str:
    """The results as Markdown; figure links are relative to `workdir` (the workdir seen from the file)."""
    s, m = results["settings"], results.get("machine") or {}
    command = results.get("command") or f"python -m tfvidgan.reproduce --workdir={results['workdir']}"
    lines = [f"# Results{': ' + results['profile'] if results['profile'] else ''}", "",
             f"`{command}`, written {results['created']}.", "",
             f"Data: {s['num_scenes']:,} 3-ball and {s['swap_num_scenes']:,} 1-ball scenes × {s['num_frames']} frames, "
             f"{s['image_size']}×{s['image_size']}. Evaluation: N = {s['eval_samples']:,} per row, "
             f"{s['eval_num_frames']}-frame clips (long videos: {s['eval_long_frames'] or 'off'}), Fréchet encoders "
             f"trained on {s['eval_encoder_samples']:,} real samples for {s['eval_encoder_steps']} steps. "
             f"Machine: {m.get('cpus')} × {m.get('cpu') or 'CPU'}{_bfloat16_note(m)}, TensorFlow {m.get('tensorflow')}. Wall time: the "
             f"run that completed the stage; \"all attempts\" adds interrupted and earlier runs of it.", ""]
    rows = []
    for s in results["stages"]:
        step = "–" if s["step"] is None else (f"{s['step']:,}" + (f" (resumed at {s['start_step']:,})"
                                                                  if s.get("start_step") else ""))
        rows.append([s["stage"], step if s["done"] else "not run", _seconds(s["wall_seconds"]),
                     _seconds(s["total_wall_seconds"]), _num(s["steps_per_second"]), s["finished"] or "–"])
    rows.append(["**total**", "", "", f"**{_seconds(results['total_wall_seconds'])}**", "", ""])
    lines += ["## Stages", ""] + _table(["stage", "step", "wall time", "all attempts", "steps/s", "finished"],
                                        rows) + [""]
    lines += _frames_md("Frames generator, 3 balls", results["frames"])
    lines += _frames_md("Frames generator, 1 ball, for the swap", results["frames_1ball"])
    video = results["video"]
    lines += _video_md("Videos", video)
    if video and video.get("long_video"):
        long = video["long_video"]
        k = video["expected_balls"]
        header = ["window"] + _video_header(k)[1:7]
        rows = [[f"first {long['window']} of {long['num_frames']}"] + [_num(long["first"][c]) for c in LONG_COLUMNS],
                [f"last {long['window']} of {long['num_frames']}"] + [_num(long["last"][c]) for c in LONG_COLUMNS]]
        lines += [f"### Long videos: first vs last {long['window']} of {long['num_frames']} frames", ""]
        lines += _table(header, rows) + [""]
    swap = results["fg_swap"]
    lines += _video_md("FG swap: the same trajectories rendered by the 1-ball FG, against real 1-ball clips", swap)
    if swap and swap.get("fg_swap"):
        s = swap["fg_swap"]
        lines += [f"Swapped clips with exactly {s.get('expected_balls')} ball: "
                  f"{_num(s.get('fraction_expected_count_frames'))} of frames; count changes per clip "
                  f"{_num(s.get('mean_count_changes'))}; speed {_num(s.get('mean_speed'))} px/frame; free-flight "
                  f"second difference {_num(s.get('free_flight_second_difference'))} px.", ""]
    figures = results.get("figures") or {}
    if figures:
        lines += ["## Figures", ""]
        for name, path in figures.items():
            rel = os.path.join(workdir, os.path.relpath(path, results["workdir"]))
            lines.append(f"- {name}: ![{name}]({rel})")
        lines.append("")
    return "\n".join(lines)
