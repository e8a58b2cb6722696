"""``decision_weight``: more loss weight where the assistant picks its next action."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from train_data import PI_TRACE, shared_pi_dataset  # noqa: E402

from tracetune.train.config import TrainConfig  # noqa: E402
from tracetune.train.decision import decision_mask, weighted_mean_loss  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mask(targets, supervised, opener, width):
    t = torch.tensor([targets])
    s = torch.tensor([supervised], dtype=torch.bool)
    return decision_mask(t, s, opener, width)[0].tolist()


def test_each_span_start_and_each_call_opener_is_marked_for_width_targets():
    targets = [1, 2, 3, 4, 7, 8, 5, 6, 9, 9, 7, 8, 1]
    supervised = [0, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]
    marked = _mask(targets, supervised, [7, 8], 2)
    assert marked == [0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0]


def test_an_opener_outside_the_supervised_tokens_marks_nothing():
    targets = [7, 8, 1, 1, 2, 2]
    supervised = [0, 0, 0, 0, 1, 1]
    assert _mask(targets, supervised, [7, 8], 3) == [0, 0, 0, 0, 1, 1]
    assert _mask(targets, [0] * 6, [7, 8], 3) == [0] * 6


def test_without_an_opener_only_span_starts_count():
    assert _mask([5, 5, 5, 5], [1, 1, 1, 1], [], 2) == [1, 1, 0, 0]


def test_weight_one_is_the_plain_mean_and_a_weight_moves_it_towards_the_marked_tokens():
    log_probs = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    supervised = torch.tensor([[True, True, True, False]])
    marked = torch.tensor([[True, False, False, False]])
    assert weighted_mean_loss(log_probs, supervised, marked, 1.0).item() == pytest.approx(2.0)
    assert weighted_mean_loss(log_probs, supervised, marked, 4.0).item() == pytest.approx((4 + 2 + 3) / 6)
    split = weighted_mean_loss(log_probs, supervised, marked, 4.0, num_items=6)
    assert split.item() == pytest.approx((4 + 2 + 3) / 6 * 3 / 6)


@pytest.fixture(scope="module")
def pi_data(tiny_student, tmp_path_factory):
    if not PI_TRACE.exists():
        pytest.skip("shared pi trace absent")
    return shared_pi_dataset(tiny_student, tmp_path_factory)


def _config(student, **overrides) -> TrainConfig:
    base = dict(model=str(student), learning_rate=5e-3, max_steps=2, per_device_train_batch_size=2,
                gradient_accumulation_steps=1, max_length=512, lora_r=8, report_to="none", warmup_ratio=0.0)
    return TrainConfig(**(base | overrides))


def _reference_loss(trainer, batch, weight, width):
    """The weighted loss from the model's full logits, as a user would write it."""
    from tracetune.train.decision import opener_ids

    model = trainer.model
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    labels = batch["labels"][:, 1:]
    supervised = labels != -100
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1))[..., 0]
    marked = decision_mask(batch["input_ids"][:, 1:], supervised, opener_ids(trainer.processing_class), width)
    weights = torch.where(marked, weight, 1.0) * supervised
    return (-(log_probs * weights).sum() / weights.sum()).item()


def test_the_training_loss_is_the_decision_weighted_mean_of_the_real_batch(tiny_student, pi_data, tmp_path):
    from tracetune.train.trainer import build_trainer

    trainer, _, _ = build_trainer(_config(tiny_student, decision_weight=5.0, decision_tokens=16), pi_data, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    with torch.no_grad():
        weighted = trainer.compute_loss(trainer.model, dict(batch)).item()
    trainer.model.eval()
    with torch.no_grad():
        plain = trainer.compute_loss(trainer.model, dict(batch)).item()
    trainer.model.train()
    reference = _reference_loss(trainer, batch, 5.0, 16)
    assert weighted == pytest.approx(reference, rel=2e-3)
    assert weighted != pytest.approx(plain, rel=1e-3)  # eval keeps the plain token mean
    assert trainer._metrics["train"]["mean_token_accuracy"]


@pytest.mark.slow
def test_a_run_with_decision_weight_trains_and_reports_a_plain_eval_loss(tiny_student, pi_data, tmp_path):
    from tracetune.train.trainer import train

    result = train(_config(tiny_student, decision_weight=4.0, max_steps=3, logging_steps=1), pi_data, tmp_path / "out")
    assert result.global_step == 3
    losses = [h["loss"] for h in result.history if "loss" in h]
    assert losses and all(loss == loss and loss > 0 for loss in losses)
    assert result.metrics["eval_loss"] > 0
