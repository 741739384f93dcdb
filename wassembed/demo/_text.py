"""The demo's words: step messages, results table, intro and notes, from the measured numbers.

Figure captions are in :mod:`wassembed.demo._captions`.
"""

from __future__ import annotations

from ._sizes import LEVELS, RECON_WEIGHT

__all__ = ["format_results", "intro", "notes", "table_rows", "report_title", "step_message", "speed_notes",
           "done_message", "conformal_note", "ood_note"]


def intro(R: dict) -> str:
    """The report's opening paragraph: data, split, training and total time."""
    d = R["dataset"]
    return (f"{d['n']:,} images of {d['grid'][0]}×{d['grid'][1]} ({d['name']}). Exact W₂² (POT network simplex, "
            f"squared-Euclidean ground cost in pixel² units) was computed for pairs among the training images "
            f"{d['train_images']} and, separately, for pairs among the test images {d['test_images']}; the model "
            f"was trained on the first cache only (preset 'fast', {RECON_WEIGHT:g} × KL reconstruction) and "
            f"evaluated on the second. Total run time "
            f"{R['total_seconds']:.0f} s" + (" (tiny run: the numbers mean little)." if R["tiny"] else "."))


def table_rows(R: dict) -> list[tuple[str, str]]:
    """The results table as (quantity, value) rows."""
    pc, tr, te, sp = R["precompute"], R["training"], R["test"], R["speed"]
    cover = R["conformal"]["coverage"]
    rows = [
        ("exact pairs (train / test images)", f"{pc['train']['total_in_cache']:,} / {pc['test']['total_in_cache']:,}"),
        ("precompute time", f"{pc['seconds']:.1f} s ({pc['pairs_computed']:,} computed, {pc['pairs_reused']:,} reused"
                            f", {pc['train']['workers']} workers)"),
        ("training time", f"{tr['seconds']:.1f} s ({tr['epochs_run']} epochs, best {tr['best_epoch']}, "
                          f"{tr['train_pairs']:,} training pairs, {tr['device']}"
                          + (f", {R['torch_threads']} thread{'s' if R['torch_threads'] > 1 else ''})"
                             if tr["device"] == "cpu" else ")")),
        ("unseen test pairs", f"{te['n_pairs']:,} (touching training images: {te['pairs_touching_training_images']})"),
        ("Pearson r (unseen pairs)", f"{te['pearson']:.4f}"),
        ("Spearman ρ (unseen pairs)", f"{te['spearman']:.4f}"),
        ("MSE (unseen pairs)", f"{te['mse']:.4g} (mean exact W₂² {te['target_mean']:.3g})"),
        ("relative MSE (unseen pairs)", f"{te['relative_mse']:.4g}"),
        ("mean relative error (unseen pairs)", f"{100 * te['mean_relative_error']:.1f} %"),
        ("conformal coverage at 50 / 90 / 99 %", " / ".join(f"{100 * cover[LEVELS.index(lv)]:.1f} %"
                                                           for lv in (0.5, 0.9, 0.99))),
        ("closest 10 % of pairs: mean rel. error", f"{100 * R['conformal']['closest_mean_relative_error']:+.1f} %"),
        ("test images flagged OOD at 99 %", f"{R['ood']['test_images_flagged']} of {R['ood']['test_images']} "
                                            f"({100 * R['ood']['fraction']:.1f} %)"),
        ("exact POT (ot.emd2, 1 process)", f"{sp['exact_pot_pairs_per_s']:,.0f} pairs/s"),
        ("distance speed-up", f"{sp['distance_speedup']:,.0f}× ({sp['distance_pairs_per_s']:,.0f} pairs/s)"),
        ("cdist speed-up", f"{sp['cdist_speedup']:,.0f}× ({sp['cdist_shape'][0]}×{sp['cdist_shape'][1]} in "
                           f"{sp['cdist_seconds']:.3f} s; exact ≈ {sp['cdist_exact_estimated_seconds']:,.0f} s)"),
        ("kNN re-ranking vs brute force", f"{R['knn']['exact_solves_reranking']:,} vs "
                                          f"{R['knn']['exact_solves_brute_force']:,} exact solves, same answer: "
                                          f"{'yes' if R['knn']['reranked_values_match_brute_force'] else 'NO'}"),
    ]
    if "test_accuracy_5nn_embedding" in R["knn"]:
        rows.append(("5-NN classification of test images", f"{100 * R['knn']['test_accuracy_5nn_embedding']:.1f} %"))
    rows.append(("total time", f"{R['total_seconds']:.1f} s"))
    return rows


def format_results(R: dict) -> str:
    """The results table printed at the end of the demo (plain text).

    Parameters
    ----------
    R : dict
        The numbers gathered by :func:`run_demo`.

    Returns
    -------
    str
    """
    from ._report import format_table

    d = R["dataset"]
    head = (f"wassembed demo: {d['name']} ({d['n']:,} images {d['grid'][0]}×{d['grid'][1]}; train images "
            f"{d['train_images']}, test images {d['test_images']})" + ("  [tiny run]" if R["tiny"] else ""))
    return head + "\n\n" + format_table(table_rows(R), headers=("quantity", "value"))


def notes(R: dict) -> list[str]:
    """The report's notes: how speeds were measured, checks, versions."""
    sp = R["speed"]
    n = [f"Speed-ups: {sp['notes']}. The cdist exact time is extrapolated from the measured ot.emd2 rate on "
         f"{sp['exact_timing_pairs']} random test×training pairs (computing all of them would take "
         f"{sp['cdist_exact_estimated_seconds']:,.0f} s).",
         f"Exact values recomputed with ot.emd2 for the timing agree with the cache to "
         f"{sp['exact_check_max_abs_diff']:.1e}.",
         conformal_note(R["conformal"]),
         ood_note(R["ood"]),
         f"Saved model reloads identically (max |Δ embedding| = {R['model_file_check_max_abs_diff']:.1e}).",
         f"Versions: {', '.join(f'{k} {v}' for k, v in R['versions'].items())}; torch threads: {R['torch_threads']}."]
    return n


def conformal_note(c: dict) -> str:
    """What the error bars were calibrated on, what they promise, and how the closest pairs fare."""
    return (f"Conformal intervals are calibrated on {c['calibration_pairs']:,} pairs of two held-out calibration "
            f"images (the last images of the training range, never trained on, and not used to choose the epoch). "
            f"The coverage level holds on average over new pairs of two images drawn like those, not for each pair; "
            f"by decile of the exact value it is lowest on the closest pairs, which the model underestimates "
            f"(closest tenth, exact W₂² ≤ {c['decile_edges'][1]:.3g} pixel²: mean relative error "
            f"{100 * c['closest_mean_relative_error']:+.0f} %, against {100 * c['all_mean_relative_error']:+.1f} % "
            f"over all pairs).")


def ood_note(o: dict) -> str:
    """How many test images the out-of-distribution check flags, against the levels' false-alarm rates."""
    rates = ", ".join(f"{100 * f:.1f} % at level {lv:g} ({n})" for lv, f, n in zip(o["levels"], o["fractions"],
                                                                                 o["flagged"]))
    return (f"Out-of-distribution check on the {o['test_images']} test images (never seen in training): flagged "
            f"{rates}; for images drawn like the training images about 1 − level is expected (false alarms).")


def step_message(step: str, sizes: dict, train_range: str, test_range: str, device: str) -> str:
    """What the demo is doing (printed before each stage ``precompute``, ``train``, ``evaluate``, ``serve``)."""
    return {
        "precompute": f"[1/4] exact W2² with POT: {sizes['train_pairs']:,} pairs among training images {train_range}, "
                      f"{sizes['test_pairs']:,} among test images {test_range} …",
        "train": f"[2/4] training the encoder/decoder ({sizes['epochs']} epochs max, device {device}, "
                 f"{RECON_WEIGHT:g} × KL reconstruction) …",
        "evaluate": "[3/4] evaluating on pairs of unseen test images …",
        "serve": "[4/4] serving: speed against exact POT, kNN, barycenters, interpolation, principal directions …",
    }[step]


def speed_notes(device: str, threads: int) -> str:
    """How the speeds were measured (kept with the numbers in ``results.json``)."""
    return ("exact: ot.emd2 on the full ground cost, one pair at a time, one process; "
            f"model: torch on {device} with {threads} thread(s), inputs "
            "encoded inside the timed call; best of 3 runs after a warm-up")


def report_title(name: str) -> str:
    """Title of the report pages."""
    return f"wassembed demo: {name}"


def done_message(html, n_figures: int, model_dir) -> str:
    """The demo's last line: where the report and the model are."""
    return f"report: {html} (and report.md, results.json, {n_figures} figures); model: {model_dir}"
