"""Explicit translation between domain objects and rows. Nothing clever: every field named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from storage.tables import ChangeRow
from workflows.model import (
    Answer,
    Approval,
    Change,
    ChangeDetails,
    Classification,
    GateCheck,
    GateStatus,
    Level,
    Links,
    Outcome,
    PeerReview,
    PipelineDeployment,
    PostChangeReview,
    Rejection,
    Rollback,
    Stage,
    TestEvidence,
    Window,
    pull_request_key,
)

Json = dict[str, Any]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _must(value: str) -> datetime:
    return datetime.fromisoformat(value)


def details_to_json(d: ChangeDetails) -> Json:
    return {
        "title": d.title,
        "classification": d.classification.value,
        "scope": d.scope,
        "description": d.description,
        "services": list(d.services),
        "risk": d.risk.value,
        "impact": d.impact.value,
        "rollback": {"plan": d.rollback.plan, "not_reversible": d.rollback.not_reversible_reason},
        "window": [_time(d.window.start), _time(d.window.end)] if d.window else None,
        "links": {
            "pull_request": d.links.pull_request,
            "ticket": d.links.ticket,
            "incident": d.links.incident,
        },
        "procedure_id": d.procedure_id,
        "implementer": d.implementer,
        **({"answers": [_answer_to_json(a) for a in d.answers]} if d.answers else {}),
        # Only a Standard change that has followed a procedure has one.
        **({"procedure_version": d.procedure_version} if d.procedure_version else {}),
    }


def _answer_to_json(a: Answer) -> Json:
    return {"question": a.question, "choice": a.choice, "weight": a.weight, "asked": a.asked}


def _answer_from_json(j: Json) -> Answer:
    return Answer(j["question"], j["choice"], j["weight"], j["asked"])


def details_from_json(j: Json) -> ChangeDetails:
    window = j["window"]
    return ChangeDetails(
        title=j["title"],
        classification=Classification(j["classification"]),
        scope=j["scope"],
        description=j["description"],
        services=tuple(j["services"]),
        risk=Level(j["risk"]),
        impact=Level(j["impact"]),
        rollback=Rollback(j["rollback"]["plan"], j["rollback"]["not_reversible"]),
        window=Window(_must(window[0]), _must(window[1])) if window else None,
        links=Links(**j["links"]),
        procedure_id=j["procedure_id"],
        implementer=j["implementer"],
        # Changes recorded before the questionnaire have no answers.
        answers=tuple(_answer_from_json(a) for a in j.get("answers", ())),
        # Changes recorded before procedures were versioned in the record have none.
        procedure_version=j.get("procedure_version", ""),
    )


def _review_to_json(r: PeerReview | None) -> Json | None:
    if r is None:
        return None
    return {
        "by": r.by,
        "at": _time(r.at),
        "assessment": r.assessment,
        "risk": r.risk.value,
        "kind": r.kind,
    }


def _review_from_json(j: Json | None) -> PeerReview | None:
    if j is None:
        return None
    return PeerReview(j["by"], _must(j["at"]), j["assessment"], Level(j["risk"]), j["kind"])


def _pcr_to_json(r: PostChangeReview | None) -> Json | None:
    if r is None:
        return None
    return {
        "by": r.by,
        "at": _time(r.at),
        "what_was_done": r.what_was_done,
        "why_it_could_not_wait": r.why_it_could_not_wait,
        "root_cause": r.root_cause,
        "classification_justified": r.classification_justified,
        "follow_ups": r.follow_ups,
        "contributed_to_incident": r.contributed_to_incident,
        "documentation": dict(r.documentation),
    }


def _pcr_from_json(j: Json | None) -> PostChangeReview | None:
    if j is None:
        return None
    return PostChangeReview(
        by=j["by"],
        at=_must(j["at"]),
        what_was_done=j["what_was_done"],
        why_it_could_not_wait=j["why_it_could_not_wait"],
        root_cause=j["root_cause"],
        classification_justified=j["classification_justified"],
        follow_ups=j["follow_ups"],
        contributed_to_incident=j["contributed_to_incident"],
        documentation=dict(j["documentation"]),
    )


def _check_to_json(c: GateCheck) -> Json:
    return {
        "pipeline": c.pipeline,
        "service": c.service,
        "environment": c.environment,
        "status": c.status.value,
        "at": _time(c.at),
        "repository": c.repository,
        "commit": c.commit,
        "run": c.run,
    }


def _check_from_json(j: Json) -> GateCheck:
    return GateCheck(
        pipeline=j["pipeline"],
        service=j["service"],
        environment=j["environment"],
        status=GateStatus(j["status"]),
        at=_must(j["at"]),
        repository=j["repository"],
        commit=j["commit"],
        run=j["run"],
    )


def deployment_to_json(d: PipelineDeployment) -> Json:
    """A deployment a pipeline reported, as stored with its change and as the API answers."""
    return {
        "id": d.id,
        "pipeline": d.pipeline,
        "service": d.service,
        "environment": d.environment,
        "started_at": _time(d.started_at),
        "triggered_by": d.triggered_by,
        "gated": d.gated,
        "outcome": d.outcome.value if d.outcome else None,
        "finished_at": _time(d.finished_at),
    }


def _deployment_from_json(j: Json) -> PipelineDeployment:
    return PipelineDeployment(
        id=j["id"],
        pipeline=j["pipeline"],
        service=j["service"],
        environment=j["environment"],
        started_at=_must(j["started_at"]),
        triggered_by=j["triggered_by"],
        gated=j["gated"],
        outcome=Outcome(j["outcome"]) if j["outcome"] else None,
        finished_at=_parse(j["finished_at"]),
    )


def _approval_to_json(a: Approval) -> Json:
    found: Json = {"by": a.by, "at": _time(a.at), "comment": a.comment, "kind": a.kind}
    if a.groups is not None:
        found["groups"] = sorted(a.groups)
    return found


def _approval_from_json(j: Json) -> Approval:
    groups = j.get("groups")
    return Approval(
        j["by"],
        _must(j["at"]),
        j["comment"],
        j["kind"],
        frozenset(groups) if groups is not None else None,
    )


def change_document(c: Change) -> Json:
    """Everything about a change that is not an indexed column."""
    return {
        "details": details_to_json(c.details),
        "review": _review_to_json(c.review),
        "test_evidence": [
            {"by": e.by, "at": _time(e.at), "evidence": e.evidence, "kind": e.kind}
            for e in c.test_evidence
        ],
        "approvals": [_approval_to_json(a) for a in c.approvals],
        "rejections": [
            {"by": r.by, "at": _time(r.at), "reason": r.reason, "stage": r.stage.value}
            for r in c.rejections
        ],
        "deployment_started_at": _time(c.deployment_started_at),
        "deployed_by": c.deployed_by,
        "outcome": c.outcome.value if c.outcome else None,
        "outcome_notes": c.outcome_notes,
        "outcome_at": _time(c.outcome_at),
        "post_change_review": _pcr_to_json(c.post_change_review),
        "owed_documents": list(c.owed_documents),
        "cancel_reason": c.cancel_reason,
        "closed_at": _time(c.closed_at),
        "requested_in": c.requested_in,
        "submitted_at": _time(c.submitted_at),
        "approvals_withdrawn_at": _time(c.approvals_withdrawn_at),
        "break_glass_at": _time(c.break_glass_at),
        "break_glass_reason": c.break_glass_reason,
        "break_glass_by": c.break_glass_by,
        "retro_approval_owed": c.retro_approval_owed,
        "closed_without_review": c.closed_without_review,
        "gate_checks": [_check_to_json(g) for g in c.gate_checks],
        "first_allowed": _check_to_json(c.first_allowed) if c.first_allowed else None,
        "deployments": [deployment_to_json(d) for d in c.deployments],
    }


def row_values(c: Change) -> Json:
    """The columns of a change's row (all but its number and version)."""
    return {
        "stage": c.stage.value,
        "classification": c.classification.value,
        "title": c.title,
        "requester": c.requester,
        "implementer": c.details.implementer,
        "pull_request": pull_request_key(c.details.links.pull_request),
        "review_owed": c.review_owed,
        "review_due_at": c.review_due_at,
        "outcome_at": c.outcome_at,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "document": change_document(c),
    }


def change_as_stored(number: int, version: int, created_at: datetime, values: Json) -> Change:
    """The change a read of its row would find once `values` (`row_values`, but for
    `created_at`) were written at `version`: its timestamps in UTC and its document through
    JSON, as the database hands them back. The gate's news is saved by the gate's round and
    read by the publisher at once: from the cache, it is not read whole twice."""
    columns = {
        name: value.astimezone(UTC) if isinstance(value, datetime) else value
        for name, value in values.items()
    }
    columns["document"] = json.loads(json.dumps(values["document"]))
    row = SimpleNamespace(
        number=number, version=version, created_at=created_at.astimezone(UTC), **columns
    )
    return change_from_row(cast(ChangeRow, row))


def change_from_row(row: ChangeRow) -> Change:
    assert row.number is not None
    j = row.document
    return Change(
        number=row.number,
        details=details_from_json(j["details"]),
        requester=row.requester,
        created_at=row.created_at,
        stage=Stage(row.stage),
        version=row.version,
        updated_at=row.updated_at,
        review=_review_from_json(j["review"]),
        test_evidence=tuple(
            TestEvidence(e["by"], _must(e["at"]), e["evidence"], e["kind"])
            for e in j["test_evidence"]
        ),
        approvals=tuple(_approval_from_json(a) for a in j["approvals"]),
        rejections=tuple(
            Rejection(r["by"], _must(r["at"]), r["reason"], Stage(r["stage"]))
            for r in j["rejections"]
        ),
        deployment_started_at=_parse(j["deployment_started_at"]),
        deployed_by=j["deployed_by"],
        outcome=Outcome(j["outcome"]) if j["outcome"] else None,
        outcome_notes=j["outcome_notes"],
        outcome_at=_parse(j["outcome_at"]),
        post_change_review=_pcr_from_json(j["post_change_review"]),
        review_owed=row.review_owed,
        review_due_at=row.review_due_at,
        owed_documents=tuple(j["owed_documents"]),
        cancel_reason=j["cancel_reason"],
        closed_at=_parse(j["closed_at"]),
        requested_in=j.get("requested_in", ""),
        submitted_at=_parse(j.get("submitted_at")),
        approvals_withdrawn_at=_parse(j.get("approvals_withdrawn_at")),
        break_glass_at=_parse(j.get("break_glass_at")),
        break_glass_reason=j.get("break_glass_reason", ""),
        break_glass_by=j.get("break_glass_by", ""),
        retro_approval_owed=j.get("retro_approval_owed", False),
        closed_without_review=j.get("closed_without_review", ""),
        gate_checks=tuple(_check_from_json(g) for g in j.get("gate_checks", ())),
        first_allowed=_check_from_json(j["first_allowed"]) if j.get("first_allowed") else None,
        deployments=tuple(_deployment_from_json(d) for d in j.get("deployments", ())),
    )
