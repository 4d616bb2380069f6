"""The sweep that chases what is owed, run every few seconds by each replica's timer.

It claims due obligations under a lease, sends the reminder (a direct message with a button
to act and snoozes), then — still holding the lease — records the next plan and an audit
event in one transaction. The thread hears of it through that audit event (the publisher
posts it once). A reminder can only be sent twice if a replica crashes between Slack
accepting the message and the record being written: then at most one duplicate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.leased import SlackWorker
from bot.views import reminders
from storage import obligations as store
from storage.obligations import Claimed
from storage.repositories import SqlChanges
from workflows.audit import AuditEntry
from workflows.chase import Cadence, Owed, Reminder, remind
from workflows.events import Happened
from workflows.followup import POLICY_REF, WEEK, review_cadence
from workflows.model import SYSTEM, Change

log = logging.getLogger(__name__)
BATCH = 50
#: Slack's refusals that mean the owner cannot be sent a direct message at all (no such user,
#: deactivated, a bot, or direct messages restricted): asking again at the next sweep changes
#: nothing. The reminder is recorded as unreachable, so the thread says so, and the chase goes
#: on at its cadence instead of knocking every few seconds.
UNREACHABLE = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "is_archived",
        "restricted_action",
        "method_not_supported_for_channel_type",
        "messages_tab_disabled",
    }
)


class Chaser(SlackWorker[Claimed]):
    """Sends the reminders owed; the scheduler's timer calls `sweep` (there is no news to
    wake it: reminders fall due by time alone)."""

    batch = BATCH

    work = store

    @functools.cached_property
    def _sweeping(self) -> asyncio.Lock:
        """Held while a sweep sends: the timer's next tick must not start a second one."""
        return asyncio.Lock()

    #: Until when Slack asked this replica to send nothing (a 429's Retry-After).
    _held_until: datetime | None = None

    async def sweep(self, batch: int | None = None) -> int:
        """One pass: remind everything due now. Returns how many reminders were recorded."""
        if self._sweeping.locked():
            return 0  # the previous sweep is still sending; the timer fires again soon
        if self._held_until is not None and self.clock.now() < self._held_until:
            return 0  # rate limited: what is due waits, unclaimed, until Slack takes it again
        async with self._sweeping:
            claimed_at = self.clock.now()
            claimed = await self.claim(batch or self.batch)
            # Never start a send late in the lease: another replica may take the row over
            # once it expires, and would send the same reminder again.
            send_by = claimed_at + self.lease / 4
            done = await asyncio.gather(*(self._chase(c, send_by) for c in claimed))
            return sum(done)

    async def _chase(self, claimed: Claimed, send_by: datetime) -> int:
        obligation = claimed.obligation
        try:
            change = await self.reading(_change, obligation.number)
            now = self.clock.now()
            if now >= send_by:
                await self.in_session(store.release, claimed.id, self.owner)
                return 0
            reminder, planned = remind(obligation, now, self._cadence(obligation.kind))
            delivery, refused = await self._deliver(reminder, change)
        except Exception as error:  # one reminder failing must not hold up the others
            reason = error.response.get("error") if isinstance(error, SlackApiError) else error
            if isinstance(error, SlackApiError) and error.response.status_code == 429:
                self._hold(error)
            log.warning(
                "could not send the %s reminder for #%s (%s); retrying at the next sweep",
                obligation.kind.label,
                obligation.number,
                reason,
            )
            await self.in_session(store.release, claimed.id, self.owner)
            return 0
        if refused:
            log.warning(
                "the %s reminder for #%s cannot reach %s (%s); the thread is told",
                obligation.kind.label,
                obligation.number,
                obligation.owner,
                refused,
            )
        entry = _audit_entry(reminder, change, now, delivery, refused)
        recorded = await self.in_session(store.record_reminder, claimed, self.owner, planned, entry)
        if not recorded:
            log.warning("lost the lease on obligation %s while reminding", claimed.id)
        return int(recorded)

    async def _deliver(self, reminder: Reminder, change: Change | None) -> tuple[str, str]:
        """Send; ("sent", "") when Slack accepted it, ("uncertain", "") when nobody can tell,
        ("unreachable", Slack's error) when the owner cannot be sent a direct message at all.

        Any other refusal (`ok: false`) means nothing was posted: it raises, and the reminder is
        tried again. A timeout, a dropped connection or a server error may have posted it
        anyway; sending again could remind twice, so it is recorded as uncertain instead — the
        chase goes on at its cadence, so nothing owed is ever dropped.
        """
        try:
            refused = await self._send(reminder, change)
        except SlackApiError as error:
            if error.response.status_code < 500:
                raise
            return "uncertain", ""
        except (TimeoutError, aiohttp.ClientError):
            return "uncertain", ""
        return ("unreachable", refused) if refused else ("sent", "")

    def _hold(self, limited: SlackApiError) -> None:
        """Send nothing more until Slack's Retry-After has passed (its client does not wait it
        out inside the sweep: that could outlast the lease, see bot/app.py)."""
        try:
            wait = max(float(limited.response.headers.get("Retry-After", 1)), 1.0)
        except (TypeError, ValueError):
            wait = 1.0
        until = self.clock.now() + timedelta(seconds=wait)
        self._held_until = max(until, self._held_until or until)

    def _cadence(self, kind: Owed) -> Cadence:
        return Cadence(WEEK, WEEK) if kind is Owed.POLICY_REVIEW else review_cadence(self.policy)

    async def drain(self, timeout: float) -> None:
        """Let a sweep in progress finish: a send cut off mid-flight may be repeated later."""
        try:
            await asyncio.wait_for(self._sweeping.acquire(), timeout)
        except TimeoutError:
            log.warning("a reminder sweep was still running at shutdown")
            return
        self._sweeping.release()

    # -- the messages ------------------------------------------------------------------------

    async def _send(self, reminder: Reminder, change: Change | None) -> str:
        """The owner's direct message is the reminder; once Slack has it, it must be recorded,
        so what follows (the policy owner's copy of an escalation) can only be best effort.
        Returns Slack's error if the owner cannot be sent a direct message at all (the policy
        owner's copy of an escalation still goes), else ""."""
        obligation = reminder.obligation
        unreachable = ""
        if obligation.owner:
            try:
                await self.client.chat_postMessage(
                    channel=obligation.owner,
                    text=reminders.reminder_text(reminder, change),
                    blocks=reminders.reminder_blocks(reminder, change),
                )
            except SlackApiError as error:
                unreachable = str(error.response.get("error") or "")
                if error.response.status_code >= 500 or unreachable not in UNREACHABLE:
                    raise
        policy_owner = self.policy.policy.owner
        if reminder.escalated and policy_owner and policy_owner != obligation.owner:
            try:
                await self.client.chat_postMessage(
                    channel=policy_owner, text=reminders.escalation_text(reminder, change)
                )
            except Exception as error:  # the escalation is also in the thread, via the audit
                log.warning("could not tell the policy owner of an overdue review: %s", error)
        return unreachable


def _audit_entry(
    reminder: Reminder, change: Change | None, now: datetime, delivery: str, refused: str = ""
) -> AuditEntry:
    obligation = reminder.obligation
    refusal = {"slack_error": refused} if refused else {}
    return AuditEntry(
        at=now,
        actor=SYSTEM,
        action=Happened.REMINDER_ESCALATED if reminder.escalated else Happened.REMINDER_SENT,
        ref=change.ref if change else POLICY_REF,
        from_stage=change.stage.value if change else "",
        to_stage=change.stage.value if change else "",
        details={
            "kind": obligation.kind.value,
            "owner": obligation.owner,
            "due": obligation.deadline.isoformat(),
            "reminder": obligation.reminders + 1,
            "overdue_seconds": int(reminder.overdue_by.total_seconds()),
            "delivery": delivery,
            **refusal,
        },
    )


def _change(session: Session, number: int) -> Change | None:
    return None if number == 0 else SqlChanges(session).get(number)
