"""Device-resident training batches: the epoch's batches laid out and copied once, no host read per step.

The epoch loop of :mod:`wassembed.learn._epoch` is checked against the per-step loop it replaced (kept here as
:func:`per_step_epoch`: ``np.unique``, index tensors and a finiteness check at every step): the same weights,
bit for bit, and the same epoch figures, with and without augmentation, and the same networks and message
when a loss is not finite. Small networks on scikit-learn's 8×8 digits with made-up targets (the loss does
not care whether they are exact distances).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wassembed.learn._epoch as ep
from wassembed.errors import TrainingError
from wassembed.exact import PairTable
from wassembed.learn import TrainSettings
from wassembed.learn._batching import bounding_boxes, pack_batches, plan_units
from wassembed.learn._device_batches import batch_layout, epoch_batches, to_device
from wassembed.learn._kinds import image_augmentation
from wassembed.learn._losses import DistanceLoss, DWELoss
from wassembed.learn._state import new_state
from wassembed.nn import ModelConfig

#: one torch thread (conftest): on a shared 2-core machine, oversubscribed threads are many times slower
pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_IMAGES = 160


def toy_pairs(seed=0) -> tuple[PairTable, list]:
    """Blocks of 6 images with all their pairs (units that share images) plus random pairs; made-up values."""
    rng = np.random.default_rng(seed)
    blocks = rng.permutation(N_IMAGES)[:120].reshape(20, 6)
    a, b = np.triu_indices(6, 1)
    bi, bj = blocks[:, a].ravel(), blocks[:, b].ravel()
    ri, rj = rng.integers(0, N_IMAGES, 300), rng.integers(0, N_IMAGES, 300)
    keep = ri != rj
    i, j = np.concatenate([bi, ri[keep]]), np.concatenate([bj, rj[keep]])
    i, j = np.minimum(i, j), np.maximum(i, j)
    train = PairTable(i, j, rng.uniform(1.0, 10.0, i.size))
    shards = [np.arange(bi.size), np.arange(bi.size, i.size)]
    return train, plan_units(shards, i, j)


def make(digits, *, augment="", batch_images=32, progress=False, seed=0):
    """A fresh ``(state, plan)`` of a ``fast`` network on the digits."""
    train, units = toy_pairs(seed)
    w = digits.weights[:N_IMAGES]
    settings = TrainSettings(epochs=3, batch_images=batch_images, augment=augment, lr=3e-3)
    ops = [o for o in augment.split(",") if o]
    plan = ep.EpochPlan(settings=settings, X=torch.as_tensor(w, dtype=torch.float32), train=train, units=units,
                        loss=DWELoss(DistanceLoss(scale=5.0), recon_weight=1.0), amp=False, progress=progress,
                        checkpoint_dir=None,
                        augment=image_augmentation((8, 8), bounding_boxes(w, (8, 8)), ops, settings.max_shift))
    return new_state(ModelConfig.preset("fast", grid=(8, 8)), settings, seed, torch.device("cpu")), plan


def per_step_epoch(state, plan, epoch) -> dict:
    """The epoch loop as it was before device batches (the reference)."""
    train, settings, scale = plan.train, plan.settings, plan.loss.distance.scale
    rng = state.begin_epoch(epoch)
    batches = pack_batches(plan.units, train.i, train.j, settings.batch_images, rng)
    state.schedule.begin_epoch(len(batches))
    tot, tot_d, seen = 0.0, 0.0, 0
    for b, idx in enumerate(batches):
        lr = state.schedule.lr
        imgs, inv = np.unique(np.concatenate([train.i[idx], train.j[idx]]), return_inverse=True)
        x = plan.X[torch.as_tensor(imgs)]
        if plan.augment is not None:
            x = plan.augment.apply(x, imgs, rng)
        z = state.encoder(x)
        loss, parts = plan.loss(z, state.decoder(z), x, torch.as_tensor(inv[:idx.size]),
                                torch.as_tensor(inv[idx.size:]), torch.as_tensor(train.value[idx], dtype=torch.float32))
        if not torch.isfinite(loss):
            raise ep._diverged(state, plan, epoch, b, float(loss.detach()), lr)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.schedule.after_batch()
        tot += float(loss.detach()) * idx.size
        tot_d += float(parts["distance"]) * scale ** 2 * idx.size
        seen += idx.size
    return {"train_loss": tot / seen, "train_mse": tot_d / seen, "lr": lr, "batches": len(batches),
            "train_pairs": seen}


def weights(state) -> list[torch.Tensor]:
    return [t.detach().clone() for t in (*state.encoder.state_dict().values(), *state.decoder.state_dict().values())]


def assert_same_weights(a, b):
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# -- the layout --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_images", [4, 16, 64])
def test_layout_equals_a_unique_per_batch(batch_images):
    train, units = toy_pairs(1)
    batches = pack_batches(units, train.i, train.j, batch_images, np.random.default_rng(0))
    lay = batch_layout(batches, train.i, train.j)
    eb = epoch_batches(batches, train, torch.device("cpu"), keep_host=True)
    assert len(eb) == len(batches) and eb.sizes.tolist() == [b.size for b in batches]
    for b, idx in enumerate(batches):
        imgs, inv = np.unique(np.concatenate([train.i[idx], train.j[idx]]), return_inverse=True)
        dimgs, li, lj, y = eb.batch(b)
        assert dimgs.tolist() == imgs.tolist() == eb.batch_images(b).tolist()
        assert li.tolist() == inv[:idx.size].tolist() and lj.tolist() == inv[idx.size:].tolist()
        assert torch.equal(y, torch.as_tensor(train.value[idx], dtype=torch.float32))
    assert lay["images"].dtype == lay["li"].dtype == np.int64


def test_to_device_keeps_dtypes_shapes_and_values():
    arrays = [np.arange(5, dtype=np.int64), np.array([1.5, -2.0, 3.25], np.float32), np.zeros(0, np.int64),
              np.arange(6, dtype=np.int32).reshape(2, 3), np.array([7], np.int64)]
    out = to_device(arrays, torch.device("cpu"))
    for a, t in zip(arrays, out):
        assert t.dtype == torch.from_numpy(a).dtype and tuple(t.shape) == a.shape
        np.testing.assert_array_equal(t.numpy(), a)


# -- the epoch: the same as the per-step loop ----------------------------------------------------------------
@pytest.mark.parametrize("augment, batch_images", [("", 32), ("shift,flip,rot", 16)])
def test_epochs_equal_the_per_step_loop(digits, monkeypatch, augment, batch_images):
    monkeypatch.setattr(ep, "CHECK_EVERY", 7)  # several read windows per epoch
    (new, plan), (old, _) = make(digits, augment=augment, batch_images=batch_images), \
        make(digits, augment=augment, batch_images=batch_images)
    for epoch in (1, 2):
        got, want = ep.run_epoch(new, plan, epoch), per_step_epoch(old, plan, epoch)
        assert {k: got[k] for k in want} == want
        assert_same_weights(weights(new), weights(old))
    assert got["batches"] > 7


@pytest.mark.parametrize("bad_call, check_every, progress", [(12, 5, False), (3, 50, False), (14, 50, True)])
def test_divergence_leaves_the_networks_as_the_per_step_loop(digits, monkeypatch, bad_call, check_every, progress):
    """A non-finite loss found at a later read: the networks are rolled back to before its step (a replay)."""
    monkeypatch.setattr(ep, "CHECK_EVERY", check_every)
    real = DWELoss.__call__

    def nan_at(call):
        n = {"calls": 0}

        def flaky(self, *a):
            n["calls"] += 1
            total, parts = real(self, *a)
            return (total * float("nan") if n["calls"] == call else total), parts
        return flaky

    errors, nets = [], []
    for run in (ep.run_epoch, per_step_epoch):
        state, plan = make(digits, progress=progress)
        monkeypatch.setattr(DWELoss, "__call__", nan_at(bad_call))
        with pytest.raises(TrainingError) as ei:
            run(state, plan, 1)
        errors.append(str(ei.value))
        nets.append(weights(state))
    assert errors[0] == errors[1] and f"batch {bad_call}" in errors[0] and "loss nan" in errors[0]
    assert_same_weights(*nets)
    assert all(torch.isfinite(t).all() for t in nets[0])


def test_no_host_read_of_a_tensor_per_step(digits, monkeypatch):
    """With loss parts kept as tensors, an epoch reads device values only at its reads (a few per epoch)."""
    real = DWELoss.__call__

    def tensor_parts(self, z, logits, x, i, j, target):
        d = self.distance(z, i, j, target)
        r = self.reconstruction(logits, x)
        return d + 2.0 * self.recon_weight * r, {"distance": d.detach(), "recon": r.detach()}

    reads = {"n": 0}
    for name in ("__float__", "__bool__", "tolist"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, orig=orig):
            reads["n"] += 1
            return orig(self, *a)
        monkeypatch.setattr(torch.Tensor, name, counted)
    monkeypatch.setattr(DWELoss, "__call__", tensor_parts)
    counts = []
    for run in (ep.run_epoch, per_step_epoch):
        state, plan = make(digits)
        reads["n"] = 0
        rec = run(state, plan, 1)
        counts.append(reads["n"])
    monkeypatch.setattr(DWELoss, "__call__", real)
    assert rec["batches"] > 20
    assert counts[0] <= -(-rec["batches"] // ep.CHECK_EVERY) + 1, counts  # one read per window
    assert counts[1] >= 2 * rec["batches"], counts  # the per-step loop: isfinite and float(loss) every step


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run with -m gpu on a GPU machine)")
def test_cuda_epoch_has_no_sync_between_reads(digits, monkeypatch):
    """On CUDA an epoch synchronises only at its reads (with loss parts kept as tensors)."""
    def tensor_parts(self, z, logits, x, i, j, target):
        d = self.distance(z, i, j, target)
        r = self.reconstruction(logits, x)
        return d + 2.0 * self.recon_weight * r, {"distance": d.detach(), "recon": r.detach()}

    monkeypatch.setattr(DWELoss, "__call__", tensor_parts)
    state, plan = make(digits)
    dev = torch.device("cuda")
    state.encoder.to(dev), state.decoder.to(dev)
    plan = ep.EpochPlan(**{**plan.__dict__, "X": plan.X.to(dev)})
    real_read = ep._StepLog.read

    def read(self, upto):
        torch.cuda.set_sync_debug_mode(0)
        try:
            return real_read(self, upto)
        finally:
            torch.cuda.set_sync_debug_mode("error")
    monkeypatch.setattr(ep._StepLog, "read", read)
    ep.run_epoch(state, plan, 1)  # warm-up (allocations, cuDNN choices)
    torch.cuda.set_sync_debug_mode("error")
    try:
        rec = ep.run_epoch(state, plan, 2)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert rec["batches"] > 0 and np.isfinite(rec["train_loss"])
