"""The live loop's sandbox setting: config key and deprecated alias, preflight before training, the report and card lines."""

from __future__ import annotations

import pytest

from tracetune.errors import TracetuneError
from tracetune.eval import sandbox
from tracetune.eval.live import LiveConfig, preflight


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)


def test_default_is_auto_and_never_unconfined(no_bwrap):
    config = LiveConfig()
    assert config.sandbox == "auto"
    assert preflight(config) == "workspace-tools"
    assert preflight(LiveConfig(sandbox="unsandboxed")) == "unsandboxed"


def test_allow_unsandboxed_is_a_deprecated_alias():
    assert LiveConfig(allow_unsandboxed=True).sandbox == "unsandboxed"
    assert LiveConfig(allow_unsandboxed=False).sandbox == "auto"
    assert LiveConfig(allow_unsandboxed=True, sandbox="unsandboxed").sandbox == "unsandboxed"
    with pytest.raises(ValueError, match="allow_unsandboxed = true contradicts sandbox = 'bwrap'"):
        LiveConfig(allow_unsandboxed=True, sandbox="bwrap")
    with pytest.raises(ValueError):
        LiveConfig(sandbox="off")


def test_run_config_keys_load(tmp_path):
    from tracetune.pipeline.config import ConfigError, load_config

    assert load_config(overrides=['eval.live.sandbox="workspace-tools"']).eval.live.sandbox == "workspace-tools"
    assert load_config(overrides=["eval.live.allow_unsandboxed=true"]).eval.live.sandbox == "unsandboxed"
    with pytest.raises(ConfigError, match="eval.live.sandbox"):
        load_config(overrides=['eval.live.sandbox="none"'])


def test_preflight_names_the_config_key_to_change(no_bwrap):
    with pytest.raises(TracetuneError) as info:
        preflight(LiveConfig(sandbox="bwrap"))
    assert 'eval.live.sandbox = "bwrap"' in info.value.message
    assert "apt-get install bubblewrap" in info.value.hint and 'eval.live.sandbox = "auto"' in info.value.hint
    with pytest.raises(TracetuneError, match="eval.live.task_ids"):
        preflight(LiveConfig(task_ids=["no-such-task"]))
    with pytest.raises(TracetuneError, match="eval.live.tools_file"):
        preflight(LiveConfig(tools_file="/no/such/tools.json"))


def test_pi_harness_needs_bubblewrap_or_the_explicit_flag(no_bwrap):
    for setting in ("auto", "workspace-tools"):
        with pytest.raises(TracetuneError, match="pi harness needs bubblewrap") as info:
            LiveConfig(harness="pi", sandbox=setting).sandbox_mode()
        assert 'eval.live.sandbox = "unsandboxed"' in info.value.hint and 'eval.live.harness = "builtin"' in info.value.hint
    assert LiveConfig(harness="pi", sandbox="unsandboxed").sandbox_mode() == "unsandboxed"


def test_report_and_card_show_the_mode(tmp_path):
    from tracetune.card.model_card import RunArtifacts, render_body
    from tracetune.eval.report import render_html

    record = sandbox.mode_record("workspace-tools")
    summary = {"episodes": 1, "success_rate": 1.0, "successes": 1, "self_ended_rate": 1.0, "valid_call_rate": 1.0,
               "mean_turns": 2.0, "mean_tokens": 10.0}
    live = {"base": {"sandbox": record, "summary": summary, "episodes": []},
            "tuned": {"sandbox": record, "summary": summary, "episodes": []}}
    results = {"settings": {"config": {"backend": {"kind": "transformers"}, "seed": 0}, "base_model": "tiny"},
               "live": live, "fidelity": None, "inspect": []}
    html = render_html(results)
    assert "Sandbox: <b>workspace-tools</b>" in html and "no shell for the model" in html
    assert html.count("<td>workspace-tools</td>") == 2
    card = render_body(RunArtifacts(run_dir=tmp_path, eval_results=results), {})
    assert "Live agent loop sandbox mode: `workspace-tools`" in card
    assert "sandbox mode" not in render_body(RunArtifacts(run_dir=tmp_path), {})
