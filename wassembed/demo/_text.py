"""The demo's words: results table, captions and notes, from the measured numbers."""

from __future__ import annotations

from ._sizes import LEVELS, RECON_WEIGHT

__all__ = ["format_results"]


def _coverage_sentence(levels, cover, val: dict, test: dict) -> str:
    short = [(lv, c) for lv, c in zip(levels, cover) if c < lv - 0.005]
    if not short:
        return "here every level is met on the test pairs."
    worst = min(short, key=lambda t: t[1] - t[0])
    text = (f"here {len(short)} of {len(levels)} levels fall short (worst: {100 * worst[1]:.1f} % at "
            f"{100 * worst[0]:.0f} %), i.e. the intervals under-cover these test pairs. The guarantee only holds "
            f"for pairs exchangeable with the calibration pairs, and these are not quite: the calibration pairs are "
            f"the trainer's validation pairs, ")
    if val.get("mse") is not None and test.get("mse") is not None:
        text += (f"which also chose the epoch kept (early stopping), so their errors are optimistic (validation "
                 f"MSE {val['mse']:.3g} vs {test['mse']:.3g} on the test pairs), ")
    return text + "and they come from a few held-out images of the training range."


def _intro(R: dict) -> str:
    d = R["dataset"]
    return (f"{d['n']:,} images of {d['grid'][0]}×{d['grid'][1]} ({d['name']}). Exact W₂² (POT network simplex, "
            f"squared-Euclidean ground cost in pixel² units) was computed for pairs among the training images "
            f"{d['train_images']} and, separately, for pairs among the test images {d['test_images']}; the model "
            f"was trained on the first cache only (preset 'fast', {RECON_WEIGHT:g} × KL reconstruction) and "
            f"evaluated on the second. Total run time "
            f"{R['total_seconds']:.0f} s" + (" (tiny run: the numbers mean little)." if R["tiny"] else "."))


def _table_rows(R: dict) -> list[tuple[str, str]]:
    pc, tr, te, sp = R["precompute"], R["training"], R["test"], R["speed"]
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
        ("90 % conformal interval coverage", f"{100 * R['conformal']['coverage'][LEVELS.index(0.9)]:.1f} %"),
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
    return head + "\n\n" + format_table(_table_rows(R), headers=("quantity", "value"))


def _notes(R: dict) -> list[str]:
    sp = R["speed"]
    n = [f"Speed-ups: {sp['notes']}. The cdist exact time is extrapolated from the measured ot.emd2 rate on "
         f"{sp['exact_timing_pairs']} random test×training pairs (computing all of them would take "
         f"{sp['cdist_exact_estimated_seconds']:,.0f} s).",
         f"Exact values recomputed with ot.emd2 for the timing agree with the cache to "
         f"{sp['exact_check_max_abs_diff']:.1e}.",
         f"Conformal intervals are calibrated on {R['conformal']['calibration_pairs']:,} validation pairs; their "
         f"guarantee is marginal over pairs like those, not per pair.",
         f"Out-of-distribution check: {R['ood']['test_images_flagged']} of {R['ood']['test_images']} test images "
         f"({100 * R['ood']['fraction']:.1f} %) reconstruct worse than 99 % of the training images (about 1 % "
         f"would be expected for images drawn like the training images).",
         f"Saved model reloads identically (max |Δ embedding| = {R['model_file_check_max_abs_diff']:.1e}).",
         f"Versions: {', '.join(f'{k} {v}' for k, v in R['versions'].items())}; torch threads: {R['torch_threads']}."]
    return n


