"""A sample that keeps repeating one span is stopped early and counts as unfinished, like one at the cap."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tracetune.eval.backends.base import Generation, GenerationRequest
from tracetune.eval.backends.loops import MIN_SPAN, loop_period
from tracetune.eval.fidelity import complete_message


@given(prefix=st.lists(st.integers(0, 50), max_size=20), span=st.lists(st.integers(0, 50), min_size=1, max_size=64),
       extra=st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_a_span_repeated_into_a_loop_is_found(prefix, span, extra):
    repeats = max(3, -(-MIN_SPAN // len(span))) + extra
    period = loop_period(prefix + span * repeats)
    assert period is not None and len(span) % period == 0


def test_what_real_outputs_repeat_is_not_a_loop():
    edit = list(range(100, 140))  # an edit's new text repeating its old text once, then closing
    assert loop_period([1, 2] + edit + [3, 4] + edit + [5]) is None
    assert loop_period([7] * (MIN_SPAN - 1)) is None  # short runs (indentation, a rule of dashes)
    assert loop_period([1, 2, 3, 4, 5] * 2) is None
    assert loop_period([7] * MIN_SPAN) == 1
    assert loop_period(list(range(20)) * 3) == 20
    assert loop_period([]) is None


def test_a_stopped_loop_is_scored_as_unfinished():
    gen = Generation(raw="npm run check && npm run check", message=None, finished=False, looping=True)
    assert complete_message(gen) == (None, "looping")
    assert complete_message(Generation(raw="x", message=None, finished=False)) == (None, "truncated")


def _requests(n: int, max_new_tokens: int) -> list[GenerationRequest]:
    return [GenerationRequest(messages=[{"role": "user", "content": "list the files " * (k + 1)}], tools=[],
                              max_new_tokens=max_new_tokens) for k in range(n)]


def test_the_backend_stops_loops_and_leaves_other_samples_alone(tiny_student):
    from tracetune.eval.backends.transformers_backend import TransformersBackend

    reqs = _requests(6, 160)
    stopping = TransformersBackend(tiny_student, device="cpu", batch_size=3).generate(reqs)
    running = TransformersBackend(tiny_student, device="cpu", batch_size=3, stop_loops=False).generate(reqs)
    assert any(g.looping for g in stopping), [g.raw[-80:] for g in running]
    for stop, run in zip(stopping, running):
        if stop.looping:
            assert not stop.finished and complete_message(stop)[1] == "looping"
            assert not run.finished and run.raw.startswith(stop.raw) and stop.completion_tokens < run.completion_tokens
        else:
            assert (stop.raw, stop.finished) == (run.raw, run.finished)


def test_loop_stop_step_by_step_flags_what_a_whole_reading_flags():
    """The host-side mirror of the completions sees what reading each row whole sees, at every step."""
    import torch

    from tracetune.eval.backends.loops import LoopStop

    prompt = [[5, 6, 7], [8, 9, 10], [1, 1, 1]]
    tails = [[1, 2, 3, 4] * 12, [11, 12] + [0] * 46, list(range(20, 68))]  # a loop, an end token, neither
    stepwise = LoopStop(3, end_ids=[0])
    for n in range(1, 49):
        ids = torch.tensor([p + t[:n] for p, t in zip(prompt, tails)])
        whole = LoopStop(3, end_ids=[0])
        whole.stopped, whole._ended = dict(stepwise.stopped), set(stepwise._ended)
        assert stepwise(ids, None).tolist() == whole(ids, None).tolist()
    assert list(stepwise.stopped) == [0] and stepwise._ended == {1}
