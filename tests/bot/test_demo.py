"""`changebot demo`, the Quick start's first command: the whole story runs, the Normal change
deployed by a pipeline the gate holds until the change is approved, and the trail is intact."""

from __future__ import annotations

from bot import demo, ids
from bot.views.request_form import request_modal
from workflows.model import Classification
from workflows.policy import parse_policy


def section(lines: list[str], title: str) -> list[str]:
    """The lines under the heading that starts with `title`, up to the next heading or the
    end, blank lines left out."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"━━ {title}"))
    rest = lines[start + 1 :]
    end = next((i for i, line in enumerate(rest) if line.startswith("━━ ")), len(rest))
    return [line for line in rest[:end] if line]


def test_the_demo_runs_both_changes_and_a_pipeline_through_the_gate() -> None:
    printed: list[str] = []

    assert demo.run(printed.append) == 0

    lines = "\n".join(printed).splitlines()
    pipeline = section(lines, "The pipeline ci-prod")
    answers = [line.strip() for line in pipeline if not line.startswith("$")]
    assert answers[0].startswith("awaiting: CHG-0001 is not yet approved")
    assert answers[1].startswith("allowed: CHG-0001 is authorised, approved by")
    assert pipeline[-1].endswith("--outcome successful  ->  closed")

    normal = section(lines, "A Normal change")
    assert normal[0] == "CHG-0001 · Upgrade Postgres 16.3 → 16.4 on billing-db"
    waiting = [line for line in normal if "is waiting to deploy billing-db" in line]
    assert len(waiting) == 1 and "@alice, your change is what it waits for." in waiting[0]
    assert normal[-1] == "  └ 🔒 Closed by pipeline `ci-prod`."

    standard = section(lines, "A Standard change")
    assert standard[-1] == "  └ 🔒 Closed by @bob."

    trail = section(lines, "The audit trail")
    assert any("pipeline:ci-prod" in line and "gate_decided" in line for line in trail)
    assert lines[-2].startswith("Audit chain: intact (")


def test_the_demo_waits_for_the_standard_form_not_for_the_word_procedure() -> None:
    """The first form names a "procedure" in its choices already: waiting for the word let
    the demo submit before the bot had redrawn the form for Standard (a failure on a busy
    machine). It waits for the input."""
    policy = parse_policy(demo.POLICY, "demo policy")
    normal = request_modal(policy)
    standard = request_modal(policy, classification=Classification.STANDARD)

    assert ids.PROCEDURE in str(normal)
    assert not demo._asks(normal, ids.PROCEDURE)
    assert demo._asks(standard, ids.PROCEDURE)
