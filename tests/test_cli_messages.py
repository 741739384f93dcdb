"""Messages of the command line name its flags and files; the same mistakes made in Python keep the API's
parameter names. One mechanism, no parsing of text: library messages mark the names of the API they use
(``wassembed.errors.param``), errors and warnings keep them (``exc.params``), and
``wassembed.cli._common.handle_errors`` writes each as the running command calls it (``cli_name``)."""

from __future__ import annotations

import re

import click
import numpy as np
import pytest
from click.testing import CliRunner

from wassembed.cli import main
from wassembed.cli._common import cli_name
from wassembed.errors import InputError, explain, param

GRID = (6, 6)


@pytest.fixture
def serve_cli(monkeypatch, tmp_path):
    """``wassembed`` serving commands on a tiny untrained model (loading stubbed) and three image files."""
    torch = pytest.importorskip("torch")
    from wassembed.serve import WassersteinEmbedding

    def model():
        torch.manual_seed(0)
        return WassersteinEmbedding(torch.nn.Linear(36, 4), torch.nn.Linear(4, 36), config=None, p=2, grid=GRID)

    monkeypatch.setattr("wassembed.serve.load", lambda path, device="cpu": model())
    (tmp_path / "model").mkdir()
    rng = np.random.default_rng(0)
    np.save(tmp_path / "seven.npy", rng.random((7, *GRID)))
    np.save(tmp_path / "five.npy", rng.random((5, *GRID)))
    np.save(tmp_path / "small.npy", rng.random((3, 5, 5)))

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run, tmp_path, model


def test_paired_distance_of_unequal_files_points_to_the_matrix_flag(serve_cli):
    run, d, model = serve_cli
    r = run("distance", d / "model", d / "seven.npy", d / "five.npy", "-o", d / "x.npy")
    assert r.exit_code == 2
    assert re.search(r"seven\.npy and \S*five\.npy hold different numbers of inputs.*fix: use --matrix for all "
                     r"pairs", r.stderr), r.stderr
    assert "cdist" not in r.stderr and "X and Y" not in r.stderr
    with pytest.raises(InputError, match=r"X and Y hold different numbers.*fix: use cdist\(X, Y\)") as exc:  # Python
        model().distance(np.load(d / "seven.npy"), np.load(d / "five.npy"))
    assert exc.value.params == ("X", "Y", "cdist(X, Y)") and exc.value.param == "X"


@pytest.mark.parametrize("args, culprit", [
    (("embed", "{m}", "{d}/small.npy"), "small.npy"),
    (("distance", "{m}", "{d}/seven.npy", "{d}/small.npy"), "small.npy"),
    (("distance", "{m}", "{d}/small.npy", "{d}/seven.npy", "--matrix"), "small.npy"),
    (("knn", "{m}", "{d}/small.npy", "{d}/seven.npy"), "small.npy"),
    (("knn", "{m}", "{d}/seven.npy", "{d}/small.npy"), "small.npy"),
])
def test_wrong_image_size_names_the_file(serve_cli, args, culprit):
    run, d, model = serve_cli
    r = run(*(a.format(m=d / "model", d=d) for a in args), "-o", d / "out.npy") if args[0] != "knn" else \
        run(*(a.format(m=d / "model", d=d) for a in args))
    assert r.exit_code == 2
    assert re.search(rf"Error: \S*{re.escape(culprit)} has the wrong image size: expected images of 6×6, "
                     r"received 5×5", r.stderr), r.stderr
    assert not re.search(r"\b(X|Y|XA|XB|Q|R) has\b", r.stderr)
    with pytest.raises(InputError, match=r"^X has the wrong image size"):  # Python keeps the parameter's name
        model().embed(np.load(d / "small.npy"))


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """A cache too small to train on (12 random pairs: no validation pair survives the split by image) and a
    small one (400 pairs among 40 images: training works, with warnings about its few held-out pairs)."""
    from wassembed.exact import precompute

    d = tmp_path_factory.mktemp("msg")
    precompute("digits", d / "tiny", pairs=12, workers=1, progress=False)
    precompute("digits", d / "small", pairs=400, images="0:40", workers=1, progress=False)
    return d / "tiny", d / "small"


def test_train_on_too_small_a_cache_names_the_flag(caches, tmp_path):
    pytest.importorskip("torch")
    r = CliRunner().invoke(main, ["train", str(caches[0]), "--out", str(tmp_path / "m"), "--device", "cpu",
                                  "--quiet"])
    assert r.exit_code == 2, r.output
    assert re.search(r"too small to train on.*fix: .*--val-fraction", r.stderr), r.stderr
    assert not re.search(r"val_fraction|\bpairs=", r.stderr), r.stderr
    import wassembed

    with pytest.raises(InputError, match=r"too small to train on.*val_fraction"):  # Python keeps the parameter
        wassembed.train(caches[0], device="cpu", progress=False)


def test_training_warnings_name_the_flags(caches, tmp_path):
    """The small-data warnings of training (Python: ``pairs=`` of precompute, ``val_fraction``, ``patience=0``)
    are printed as one line each, in the command's words."""
    pytest.importorskip("torch")
    r = CliRunner().invoke(main, ["train", str(caches[1]), "--out", str(tmp_path / "m"), "--device", "cpu",
                                  "--epochs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert lines, r.stderr
    text = "\n".join(lines)
    assert re.search(r"--pairs \d+ in `wassembed precompute`", text) and "--val-fraction" in text, text
    assert not re.search(r"\bpairs=|val_fraction|patience=", text), text
    assert "SmallDataWarning" not in r.stderr  # not Python's warning format


def test_bench_counts_name_the_flags():
    pytest.importorskip("distributed")
    r = CliRunner().invoke(main, ["bench", "dask", "--data", "digits", "--pairs", "0"])
    assert r.exit_code == 2
    assert re.search(r"bad --pairs: .*received 0; fix: pass e\.g\. --pairs 2\b", r.stderr), r.stderr
    assert "n_pairs" not in r.stderr and "pairs=" not in r.stderr
    from wassembed.bench import run_dask_benchmark
    from wassembed.data import load_dataset

    with pytest.raises(InputError, match=r"bad n_pairs.*n_pairs=2"):  # Python keeps the parameter's name
        run_dask_benchmark(load_dataset("digits", limit=20), n_pairs=0)


def test_options_of_the_running_command_are_reworded_without_a_word_list(tmp_path):
    """``precompute`` passes no words: its own options (``--chunk-size``) are found on the Click command."""
    r = CliRunner().invoke(main, ["precompute", "digits", "--out", str(tmp_path / "c"), "--pairs", "10",
                                  "--chunk-size", "0", "--quiet"])
    assert r.exit_code == 2
    assert re.search(r"bad --chunk-size: .*fix: pass e\.g\. --chunk-size \d+", r.stderr), r.stderr
    assert "chunk_size" not in r.stderr


_OPTIONS = {o.name: o for o in (click.Option(["--workers"], type=int), click.Option(["--val-fraction"]),
                                 click.Option(["--resume"], is_flag=True), click.Option(["--lot/--no-lot"]),
                                 click.Option(["-k", "k"]))}


@pytest.mark.parametrize("message, words, python, cli", [
    (f"use {param('cdist(X, Y)')} for all pairs", {"cdist(X, Y)": "--matrix"}, "use cdist(X, Y) for all pairs",
     "use --matrix for all pairs"),
    (f"{param('X')} and {param('Y')} differ; pass embed({param('X')})'s output", {"X": "a.npy", "Y": "b.npy"},
     "X and Y differ; pass embed(X)'s output", "a.npy and b.npy differ; pass embed(a.npy)'s output"),
    (f"fix: more pairs ({param('pairs', 10000)} in {param('precompute')})",
     {"pairs": "--pairs", "precompute": "`wassembed precompute`"}, "fix: more pairs (pairs=10000 in precompute)",
     "fix: more pairs (--pairs 10000 in `wassembed precompute`)"),
    (f"bad {param('workers')}: 2 workers; fix: {param('workers', 2)}", {}, "bad workers: 2 workers; fix: workers=2",
     "bad --workers: 2 workers; fix: --workers 2"),
    (f"raise {param('val_fraction')}, or {param('resume', True)}, or {param('lot', False)}", {},
     "raise val_fraction, or resume=True, or lot=False", "raise --val-fraction, or --resume, or --no-lot"),
    (f"{param('k')} <= 7; pass {param('warn_ood', False)}", {"warn_ood=False": "--no-ood-warning"},
     "k <= 7; pass warn_ood=False", "-k <= 7; pass --no-ood-warning"),
    (f"in /data/X/X.npy, {param('X')}; workers", {"X": "Q.npy"}, "in /data/X/X.npy, X; workers",
     "in /data/X/X.npy, Q.npy; workers"),  # only the marked names are written otherwise
    (f"{param('patience', 0)}", {}, "patience=0", "patience=0"),  # no such option: Python's words
])
def test_marked_names_are_written_as_the_command_calls_them(message, words, python, cli):
    exc = InputError(explain(message))
    assert str(exc) == python and "\x02" not in repr(exc)
    assert exc.render(lambda name, value: cli_name(words, _OPTIONS, name, value)) == cli


def _commands(cmd: click.Command, path: tuple = ()):
    """Every command of the tree under ``cmd`` (groups included) with its path, importing lazy subcommands."""
    yield path, cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1] if path else "wassembed")
        for name in cmd.list_commands(ctx):
            yield from _commands(cmd.get_command(ctx, name), (*path, name))


def test_every_option_of_every_command_has_help():
    seen, missing = set(), []
    for path, cmd in _commands(main):
        seen.add(" ".join(path))
        missing += [f"wassembed {' '.join(path)} {'/'.join(p.opts)}" for p in cmd.params
                    if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert {"train", "cache verify", "precompute", "distance", "bench threads", "bench dask"} <= seen, seen
    assert missing == [], missing


def test_train_help_explains_epochs_and_distillation_together():
    r = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert re.search(r"--epochs INTEGER RANGE .*pair epochs.*distillation phase runs first and is not counted: "
                     r"--epochs does not shorten it \(see --distill-epochs\)", text), text
    assert re.search(r"--distill-epochs INTEGER RANGE .*in addition to --epochs \(a small --epochs does not cap "
                     r"it\) \[80; 40 for point clouds\]; 0 skips it", text), text
    assert "--epochs 2 --distill-epochs 5" in text  # the quick run, in the command's description


@pytest.fixture
def interrupt_at(monkeypatch):
    """Make training raise KeyboardInterrupt (as Ctrl-C does) at a chosen point: ``"distillation"`` (the phase
    before the first pair epoch) or an int (that pair epoch, after the previous ones were checkpointed); None
    disarms it."""
    from wassembed.learn import _trainer

    def arm(where):
        if where is None:  # disarmed: training runs as usual again
            monkeypatch.undo()
        elif where == "distillation":
            def distill_phase(*a, **k):
                raise KeyboardInterrupt
            monkeypatch.setattr(_trainer, "_distill_phase", distill_phase)
        else:
            real = _trainer.run_epoch

            def run_epoch(state, plan, epoch):
                if epoch == where:
                    raise KeyboardInterrupt
                return real(state, plan, epoch)
            monkeypatch.setattr(_trainer, "run_epoch", run_epoch)

    yield arm
    monkeypatch.undo()


def test_ctrl_c_during_distillation_says_nothing_was_saved(caches, tmp_path, interrupt_at):
    pytest.importorskip("torch")
    out = tmp_path / "m"
    args = ["train", str(caches[1]), "--out", str(out), "--device", "cpu", "--epochs", "2", "--quiet"]
    interrupt_at("distillation")
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 130, r.output
    assert re.search(r"Interrupted before the first pair epoch ended .*distillation phase.* writes no "
                     r"checkpoint\): nothing was saved in \S+checkpoints\. Rerun the same command, without --resume",
                     r.stderr), r.stderr
    assert not (out / "checkpoints" / "state.json").exists()  # what the message says
    r = CliRunner().invoke(main, [*args, "--resume"])  # a user who resumes anyway is told why not, in flags
    assert r.exit_code == 2
    assert re.search(r"nothing to resume: .*fix: train without --resume first", r.stderr), r.stderr
    assert "resume=True" not in r.stderr


def test_ctrl_c_after_a_pair_epoch_names_its_checkpoint_and_resume_finishes(caches, tmp_path, interrupt_at):
    pytest.importorskip("torch")
    out = tmp_path / "m"
    args = ["train", str(caches[1]), "--out", str(out), "--device", "cpu", "--epochs", "2", "--distill-epochs",
            "1", "--quiet"]
    interrupt_at(2)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 130, r.output
    assert re.search(r"Interrupted: the checkpoint of pair epoch 1 is in \S+checkpoints; rerun the same command "
                     r"with --resume", r.stderr), r.stderr
    interrupt_at(None)
    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert (out / "model.json").exists()


@pytest.mark.filterwarnings("ignore::wassembed.learn.SmallDataWarning")  # the small cache's, as expected
def test_ood_warning_names_the_flag(caches, tmp_path):
    """``distance`` on inputs unlike the training images: the warning names --no-ood-warning, which silences it."""
    pytest.importorskip("torch")
    import wassembed

    model = tmp_path / "model"
    wassembed.train(caches[1], epochs=1, distill_epochs=0, device="cpu", progress=False).save(model)
    noise = np.random.default_rng(0).random((6, 8, 8)) ** 8  # sparse bright specks: far from any digit
    np.save(tmp_path / "noise.npy", noise)
    args = ["distance", str(model), str(tmp_path / "noise.npy"), str(tmp_path / "noise.npy"), "-o",
            str(tmp_path / "d.npy")]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert re.search(r"warning: \d+ of 12 inputs .*pass --no-ood-warning to silence", r.stderr), r.stderr
    assert "warn_ood" not in r.stderr
    r = CliRunner().invoke(main, [*args, "--no-ood-warning"])
    assert r.exit_code == 0 and "warning:" not in r.stderr, r.stderr
