"""Delivers to Slack what the database says is still to be shown, until Slack accepts it.

For each change with news: post its card (the root of its thread) or bring the card up to
the change's latest version — one update however many steps happened meanwhile — then post
each new audit event's effects in order. Progress is recorded after every accepted call and
only while this replica still holds the lease, so a reply is posted once; only a crash
between Slack accepting a call and the progress being written can repeat one message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.catalog import LiveCatalog
from bot.directory import Directory
from bot.effects import Effect, effects_for
from bot.leased import LeaseLost, SlackWorker
from bot.traffic import Traffic
from bot.views import card as card_view
from bot.views import replies
from storage import driver, outbox
from storage.outbox import Owed, Publication
from storage.proposals import counting_adopted
from storage.repositories import SqlChanges, reading_trail, trail_read, trail_went_on
from workflows import approval_rules
from workflows.audit import ChainedEntry
from workflows.errors import NotFound
from workflows.model import Change, Classification, format_ref
from workflows.schedule import Conflict
from workflows.standing import WAITING_FOR_APPROVAL, standing

log = logging.getLogger(__name__)

BATCH = 25
#: While a burst of requests goes on: a card or reply costs several Web API calls' worth of CPU.
BUSY_BATCH = 5
RETRY_FIRST = 2.0
RETRY_MAX = 300.0
#: In the thread of a card posted again because it was deleted in Slack.
REPOSTED = "The card of this change was deleted in Slack; here it is again."
#: Errors that retrying will not fix until a person acts: logged once, told, retried slowly.
NEEDS_A_PERSON = {
    "invalid_auth": "the bot token is invalid: check SLACK_BOT_TOKEN",
    "not_authed": "no bot token was sent: check SLACK_BOT_TOKEN",
    "token_revoked": "the bot token was revoked: reinstall the app and update SLACK_BOT_TOKEN",
    "account_inactive": "the bot's account is inactive: reinstall the app",
    "missing_scope": "the app lacks a scope: reinstall it from manifest.yml",
    "channel_not_found": "the changes channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not in the channel: invite it with /invite @changebot",
    "is_archived": "the channel is archived: choose another changes channel in the policy",
}


#: Answers meaning the card a message refers to is no longer in Slack.
CARD_GONE = ("message_not_found", "thread_not_found")

#: Answers meaning the bot cannot post in a channel (and joining did not help).
CANNOT_POST = (
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "method_not_supported_for_channel_type",
    "restricted_action",
)


#: What a delivery reads: the change, its events not yet shown, the changes it conflicts with,
#: and where their cards are (channel, ts).
_Loaded = tuple[Change, list[ChainedEntry], tuple[Conflict, ...], dict[int, tuple[str, str]]]


def _marker(change: Change, seq: int, index: int) -> dict[str, Any]:
    """Message metadata naming the audit event and effect a reply shows, so a retry can tell
    whether Slack already has it."""
    return {
        "event_type": "changebot_step",
        "event_payload": {"ref": change.ref, "seq": seq, "effect": index},
    }


@dataclass
class _Delivery:
    """One claimed publication being delivered."""

    pub: Publication
    change: Change
    channel: str
    thread_ts: str
    #: The open changes its window collides with, and where their cards are (channel, ts).
    conflicts: tuple[Conflict, ...] = ()
    threads: dict[int, tuple[str, str]] = field(default_factory=dict)
    progressed: bool = False
    #: Progress made but not yet written: it goes with the next write, which comes before
    #: the next message is posted (a post not on record could be posted twice) or is the
    #: release itself. A card drawn again is the only other thing held back: a card updated
    #: but not on record is only updated again.
    pending: dict[str, object] = field(default_factory=dict)
    #: A message was posted since progress was last written: it is written before the next.
    posted: bool = False
    #: The note an earlier delivery owed and could not send, its card deleted since.
    unpaid: str = ""


class Publisher(SlackWorker[Publication]):
    doing = "publishing"
    batch = BATCH

    work = outbox

    def __init__(
        self,
        *args: Any,
        traffic: Traffic | None = None,
        directory: Directory | None = None,
        **kwargs: Any,
    ) -> None:
        """As a SlackWorker, with the replica's `traffic` to give way to (people first), and
        the `directory` of the policy's user groups, so a card can say when nobody but the
        requester could meet one of its approval rules."""
        super().__init__(*args, **kwargs)
        self.traffic = traffic or Traffic()
        self.directory = directory
        #: The workspace's address (auth.test's `url`), for links to other changes' cards.
        self.workspace_url = ""
        #: The catalog in force, shared with the listeners: cards name the procedures adopted
        #: in Slack as they name the file's.
        self.live: LiveCatalog | None = None

    async def run(self, interval: float = 2.0) -> None:
        await super().run(interval)

    def permalink(self, channel: str, ts: str) -> str:
        """A link to a message, in Slack's permalink form, once the workspace is known."""
        if not self.workspace_url:
            return ""
        return f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

    async def next_batch(self) -> int:
        # People first (bot/traffic.py): a small batch if the burst goes on.
        return BATCH if await self.traffic.lull() else BUSY_BATCH

    async def sweep(self, batch: int | None = None) -> int:
        """Claim what is due and deliver it all. The database work of the sweep's deliveries
        is done together, in two turns of a worker thread, not two for each: their reads
        before (`_load_all`), their releases after (`_release_all`). Each turn hands the
        interpreter between the event loop and the thread, which cost a delivery of a gate's
        first answer as much CPU again as the delivery itself (3.2 against 5.5-7 ms in
        process, on PostgreSQL)."""
        claimed = await self.claim(batch or self.batch)
        if not claimed:
            return 0
        sweep = _Sweep(await self.reading(self._load_all, claimed))
        await asyncio.gather(*(self._deliver(pub, sweep) for pub in claimed))
        if sweep.releases:
            await self.in_one_statement(_release_all, sweep.releases)
        return len(claimed)

    # -- one change ----------------------------------------------------------------------------

    async def _deliver(self, pub: Publication, sweep: _Sweep) -> None:
        """Deliver one publication of the `sweep`, from what the sweep read for it."""
        delivery: _Delivery | None = None
        try:
            loaded = sweep.loaded[pub.number]
            if isinstance(loaded, Exception):
                raise loaded
            change, events, conflicts, threads = loaded
            delivery = _Delivery(pub, change, pub.channel, pub.thread_ts, conflicts, threads)
            if pub.owed and pub.thread_ts:  # a note an earlier delivery could not send
                await self._pay_again(delivery, pub.owed)
            await self._show_card(delivery)
            await self._deliver_effects(delivery, events)
            await self._release(
                pub.number,
                due_at=None,
                claimed_due_at=pub.due_at,
                progress=delivery.pending,
                sweep=sweep,
            )
        except LeaseLost:
            log.info("lost the lease on %s to another replica", pub.number)
        except Exception as error:
            # Backing off grows only while nothing gets through; any progress starts it over.
            # But a failure stays on record (1, not 0) until a delivery goes through whole:
            # what failed may have landed in Slack, so the next delivery looks before posting.
            if delivery is not None and delivery.progressed:
                pub = replace(pub, attempts=min(pub.attempts, 1))
            await self._failed(pub, error, delivery.pending if delivery is not None else {}, sweep)

    def _load(self, session: Session, pub: Publication) -> _Loaded:
        """What one publication's delivery reads (`_load_together`), or its error raised."""
        loaded = self._load_together(session, [pub])[pub.number]
        if isinstance(loaded, Exception):
            raise loaded
        return loaded

    def _load_all(
        self, session: Session, pubs: Sequence[Publication]
    ) -> dict[int, _Loaded | Exception]:
        """What each publication's delivery reads (`_load`), or the error reading it raised,
        for that delivery alone to fail with: read for all of them together, in a few
        statements whatever their number; if that fails, for each alone."""
        try:
            return self._load_together(session, pubs)
        except Exception:
            log.info("reading a sweep's deliveries together failed; reading each alone")
            session.rollback()
        loaded: dict[int, _Loaded | Exception] = {}
        for pub in pubs:
            try:
                loaded[pub.number] = self._load(session, pub)
            except Exception as error:  # its delivery fails with it, not all of them
                session.rollback()
                loaded[pub.number] = error
        return loaded

    def _load_together(
        self, session: Session, pubs: Sequence[Publication]
    ) -> dict[int, _Loaded | Exception]:
        """What the publications' deliveries read: each change, its events not yet shown,
        the changes it conflicts with and where their cards are. For all of them at once:
        the catalog's count, their events and their versions in one flight; the changes
        not cached at those versions in one statement; their conflicts in one for each
        window and services they share; where the cards they conflict with are, in one. A
        delivery a statement each cost a gate's first answer 3 of its 5 round trips.

        The events first, then the changes: on PostgreSQL each statement sees what is
        committed when it starts, and replies are drawn from the change (an approval's
        "2 of 2"), so the change must be at least as new as the events it explains."""
        counted = counting_adopted() if self.live is not None else None
        changes = SqlChanges(session)
        trails = {
            pub.number: reading_trail(format_ref(pub.number), pub.published_seq) for pub in pubs
        }
        also = [counted] if counted is not None else []
        driver.together(session, [*also, *trails.values(), *changes.reading_ahead(list(trails))])
        if self.live is not None:
            self.policy = self.live.refresh(session, counted)
        events = {number: trail_read(session, trail) for number, trail in trails.items()}
        found = changes.get_many(list(trails))
        went_on = [number for number, trail in trails.items() if trail_went_on(trail)]
        if went_on:  # the rest of their trails was read after them: read them again, newer
            found.update(changes.get_many(went_on))
        conflicts = changes.conflicts_among(found.values())
        others = {c.other.number for mine in conflicts.values() for c in mine}
        threads = outbox.threads(session, others)
        loaded: dict[int, _Loaded | Exception] = {}
        for number in trails:
            change = found.get(number)
            if change is None:
                loaded[number] = NotFound("change", format_ref(number))
                continue
            mine = conflicts.get(number, ())
            where = {
                c.other.number: threads[c.other.number] for c in mine if c.other.number in threads
            }
            loaded[number] = change, events[number], mine, where
        return loaded

    async def _show_card(self, d: _Delivery) -> None:
        now = self.clock.now()
        members = await self._members(d.change)
        standing_now = standing(d.change, self.policy, now, d.conflicts, members)
        links = {n: self.permalink(*where) for n, where in d.threads.items()}
        shown = card_view.card_message(standing_now, self.policy, links)
        # Due by time alone: break-glass has opened since the card was drawn.
        redraw = d.pub.refresh_at is not None and d.pub.refresh_at <= now
        stale = d.pub.card_version < d.change.version or redraw
        sends = not d.thread_ts or stale
        if not d.thread_ts:
            await self._post_card(d, shown)
            if d.conflicts:  # their cards can link this one now that it is in Slack
                others = [c.other.number for c in d.conflicts]
                await self.in_session(_redraw, others, now)
                self.kick()
        elif stale:
            try:
                await self.client.chat_update(channel=d.channel, ts=d.thread_ts, **shown)
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
                await self._post_card(d, shown, reposted=True)
            if d.pub.mirror_ts:
                await self._update_mirror(d, shown)
        await self._mirror(d, shown)
        d.pending.update(
            outbox.card_drawn(d.change.version, standing_now.changes_at, d.pub.refresh_at)
        )
        d.progressed = d.progressed or sends  # a card already current is no progress

    async def _members(self, change: Change) -> dict[str, frozenset[str]] | None:
        """Who is in the groups of the change's approval rules, while it waits for approval."""
        if self.directory is None or change.stage not in WAITING_FOR_APPROVAL:
            return None
        rules = approval_rules.rules_for(change, self.policy)
        return await self.directory.known_members(g for r in rules for g in r.approvers.groups)

    async def _mirror(self, d: _Delivery, shown: dict[str, Any]) -> None:
        """An emergency's card also goes where it was declared (usually the incident channel),
        or, where the bot cannot post, its requester gets a link to it."""
        change, pub = d.change, d.pub
        where = change.requested_in
        if change.classification is not Classification.EMERGENCY or pub.mirror_channel:
            return
        if not where or where == d.channel:
            return
        marker = {"event_type": "changebot_card_copy", "event_payload": {"ref": change.ref}}
        try:
            copy = await self._post_once(where, shown, marker, careful=pub.attempts > 0)
        except SlackApiError as error:
            if error.response.get("error") not in CANNOT_POST:
                raise
            await self._tell_mirror_refused(d, where, careful=pub.attempts > 0)
            await self._progress(pub.number, mirror_channel="-")
            return
        await self._progress(pub.number, mirror_channel=copy[0], mirror_ts=copy[1])

    async def _tell_mirror_refused(self, d: _Delivery, where: str, *, careful: bool) -> None:
        """The requester hears once that the copy cannot be posted: after a failure
        (`careful`), only if the message is not in their DM already (it may have landed)."""
        change = d.change
        marker = {
            "event_type": "changebot_note",
            "event_payload": {
                "ref": change.ref,
                "note": "copy_refused",
                "channel": where,
                "card": d.thread_ts,
            },
        }
        if careful and await self._in_dm(change.requester, marker):
            log.info("change %s: the requester was already told the copy is refused", change.ref)
            return
        link = await self.client.chat_getPermalink(channel=d.channel, message_ts=d.thread_ts)
        text = replies.mirror_refused(change, where, link.get("permalink", ""))
        await self.client.chat_postMessage(channel=change.requester, text=text, metadata=marker)

    async def _update_mirror(self, d: _Delivery, shown: dict[str, Any]) -> None:
        try:
            await self.client.chat_update(channel=d.pub.mirror_channel, ts=d.pub.mirror_ts, **shown)
        except SlackApiError as error:
            if error.response.get("error") not in (*CANNOT_POST, "message_not_found"):
                raise
            log.info("the copy of change %s's card is gone: %s", d.pub.number, error)

    async def _post_card(self, d: _Delivery, shown: dict[str, Any], reposted: bool = False) -> None:
        channel = self.policy.channels.changes or d.change.requested_in or d.change.requester
        marker = {"event_type": "changebot_card", "event_payload": {"ref": d.change.ref}}
        # A card posted again after its deletion is looked for too: the deleted one is gone
        # from the channel's history.
        d.channel, d.thread_ts = await self._post_once(
            channel, shown, marker, careful=d.pub.attempts > 0
        )
        # The note it owes is on record with the card, so a failed send is retried, not lost.
        # A requester whose confirmation went unsent with the deleted card gets it now: it
        # links the card they have never seen (the note in the thread is for the channel).
        owed = Owed.CONFIRMATION
        if reposted and d.unpaid != Owed.CONFIRMATION:
            owed = Owed.REPOSTED_NOTE
        where = {"channel": d.channel, "thread_ts": d.thread_ts, "owed": owed}
        await self._progress(d.pub.number, **{**d.pending, **where})
        d.pending.clear()
        await self._pay(d, owed, careful=False)

    async def _pay_again(self, d: _Delivery, owed: str) -> None:
        """The note an earlier delivery owed. If its card was deleted meanwhile, the card is
        posted again next (`_show_card` finds it gone: a delivery that failed before its note
        never recorded the card as drawn), and owes its note then."""
        try:
            await self._pay(d, owed, careful=d.pub.attempts > 0)
        except SlackApiError as error:
            if error.response.get("error") not in CARD_GONE:
                raise
            d.unpaid = owed
            d.pending["owed"] = Owed.NOTHING

    async def _pay(self, d: _Delivery, owed: str, *, careful: bool) -> None:
        """Send the note the card's posting owes; after a failure (`careful`), only if it is
        not in Slack already (the failed send may have landed)."""
        marker = {
            "event_type": "changebot_note",
            "event_payload": {"ref": d.change.ref, "note": owed, "card": d.thread_ts},
        }
        if owed == Owed.REPOSTED_NOTE:
            if not (careful and await self._in_thread(d, marker)):
                await self.client.chat_postMessage(
                    channel=d.channel, thread_ts=d.thread_ts, text=REPOSTED, metadata=marker
                )
        elif not (careful and await self._in_dm(d.change.requester, marker)):
            link = await self.client.chat_getPermalink(channel=d.channel, message_ts=d.thread_ts)
            text = replies.confirmation(d.change, link.get("permalink", ""))
            await self.client.chat_postMessage(
                channel=d.change.requester, text=text, metadata=marker
            )
        d.pending["owed"] = Owed.NOTHING
        d.posted = True  # on record before the next post
        d.progressed = True

    async def _post_once(
        self, channel: str, shown: dict[str, Any], marker: dict[str, Any], *, careful: bool
    ) -> tuple[str, str]:
        """Post `shown` in `channel` carrying `marker`; after a failure (`careful`), a message
        Slack posted without saying so is adopted instead and drawn as `shown`: people may
        have clicked on it meanwhile, and it is recorded as drawn now. (channel, ts)."""
        found = await self._posted(channel, marker) if careful else None
        if found is not None:
            await self.client.chat_update(channel=found[0], ts=found[1], **shown)
            return found
        response = await self._post_joining(channel, {**shown, "metadata": marker})
        return str(response["channel"]), str(response["ts"])

    async def _posted(self, channel: str, marker: dict[str, Any]) -> tuple[str, str] | None:
        """The latest message of the bot's in `channel` carrying `marker`: one Slack posted
        without confirming it (a timeout, say), to adopt, not repeat. (channel, ts) or None."""
        try:
            response = await self.client.conversations_history(
                channel=channel, include_all_metadata=True, limit=200
            )
        except SlackApiError:
            return None  # not visible (a DM, or not yet joined): nothing was posted there
        for message in response.get("messages") or []:
            if (message.get("metadata") or {}).get("event_payload") == marker["event_payload"]:
                return str(response.get("channel") or channel), str(message["ts"])
        return None

    async def _post_joining(self, channel: str, shown: dict[str, Any]) -> Any:
        """Post in the channel, joining it first if it is public and the bot is not in it."""
        try:
            return await self.client.chat_postMessage(channel=channel, **shown)
        except SlackApiError as error:
            if error.response.get("error") != "not_in_channel":
                raise
            await self.client.conversations_join(channel=channel)
            return await self.client.chat_postMessage(channel=channel, **shown)

    async def _deliver_effects(self, d: _Delivery, events: list[ChainedEntry]) -> None:
        start = d.pub.effect_index
        # After a failure Slack may have posted what it did not confirm: look before reposting.
        careful = d.pub.attempts > 0
        for event in events:
            effects = effects_for(event.entry, d.change, self.policy)
            for index in range(start, len(effects)):
                if d.posted or not self._surely_held(d):
                    await self._write_pending(d)
                await self._send(d, effects[index], _marker(d.change, event.seq, index), careful)
                d.posted = True
                careful = False
                d.progressed = True
                d.pending.update(effect_index=index + 1)
            start = 0
            d.pending.update(published_seq=event.seq, effect_index=0)

    async def _send(
        self, d: _Delivery, effect: Effect, marker: dict[str, Any], careful: bool
    ) -> None:
        if effect.to:
            if careful and await self._in_dm(effect.to, marker):
                log.info("change %s: message %s was already sent", d.pub.number, marker)
                return
            await self.client.chat_postMessage(channel=effect.to, text=effect.text, metadata=marker)
            return
        if careful and await self._in_thread(d, marker):
            log.info("change %s: reply %s was already posted", d.pub.number, marker)
            return
        await self.client.chat_postMessage(
            channel=d.channel, thread_ts=d.thread_ts, text=effect.text, metadata=marker
        )

    async def _in_dm(self, user: str, marker: dict[str, Any]) -> bool:
        """Is the message carrying this marker already in the bot's DM with `user`? If the
        DM cannot be read (a workspace that installed the app before it asked for
        `im:history`), it is sent again: twice rather than never."""
        try:
            opened = await self.client.conversations_open(users=user)
            found = await self._posted(str(opened["channel"]["id"]), marker)
        except SlackApiError:
            return False
        return found is not None

    async def _in_thread(self, d: _Delivery, marker: dict[str, Any]) -> bool:
        """Is the reply carrying this marker already in the thread?"""
        response = await self.client.conversations_replies(
            channel=d.channel, ts=d.thread_ts, include_all_metadata=True, limit=1000
        )
        wanted = marker["event_payload"]
        return any(
            (m.get("metadata") or {}).get("event_payload") == wanted
            for m in response.get("messages") or []
        )

    # -- bookkeeping -----------------------------------------------------------------------------

    async def _write_pending(self, d: _Delivery) -> None:
        if d.pending:
            await self._progress(d.pub.number, **d.pending)
            d.pending.clear()
        d.posted = False

    def _surely_held(self, d: _Delivery) -> bool:
        """Whether the lease is still this replica's for certain: no other replica takes a
        publication over before its lease runs out, and more than half of it is left. Then a
        first reply needs no write first to prove it (the progress so far goes with the next
        write); later, or after a post not yet on record, the write comes first."""
        until = d.pub.lease_until
        return until is not None and self.clock.now() < until - self.lease / 2

    async def _progress(self, number: int, **values: object) -> None:
        """Record progress under the lease (LeaseLost if another replica took it over)."""
        now = self.clock.now()
        recorded = await self.in_one_statement(
            outbox.record_progress, number, self.owner, now, **values
        )
        if not recorded:
            raise LeaseLost(number)

    async def _release(
        self,
        number: int,
        *,
        due_at: datetime | None,
        attempts: int = 0,
        error: str = "",
        claimed_due_at: datetime | None = None,
        progress: dict[str, object] | None = None,
        sweep: _Sweep | None = None,
    ) -> None:
        """Give the lease back, writing the `progress` not yet written with it: now, or with
        the rest of the `sweep`'s at its end. (Should the replica die before, another takes
        the lease over once it lapses and looks in Slack before posting again.)"""
        release = _Release(
            number,
            self.owner,
            self.clock.now(),
            {
                "due_at": due_at,
                "attempts": attempts,
                "last_error": error,
                "claimed_due_at": claimed_due_at,
                "progress": progress or {},
            },
        )
        if sweep is not None:
            sweep.releases.append(release)
        else:
            await self.in_one_statement(_release_all, [release])

    async def _failed(
        self,
        pub: Publication,
        error: Exception,
        progress: dict[str, object],
        sweep: _Sweep | None = None,
    ) -> None:
        """Back off as the error says; what got through before it (`progress`) is kept."""
        if isinstance(error, TimeoutError | OSError | aiohttp.ClientError):
            await self._retry_later(
                pub, f"Slack did not answer ({error!r})", RETRY_FIRST, progress, sweep=sweep
            )
            return
        if not isinstance(error, SlackApiError):  # one broken change must not hold up others
            log.error("could not publish change %s; backing off", pub.number, exc_info=error)
            await self._retry_later(
                pub, f"internal error: {type(error).__name__}", 30.0, progress, sweep=sweep
            )
            return
        code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
        if error.response.status_code == 429 or code == "ratelimited":
            wait = float(error.response.headers.get("Retry-After", RETRY_FIRST) or RETRY_FIRST)
            # Refused, so nothing was posted: no backoff, nothing uncertain to look for.
            await self._retry_later(
                pub, code, max(wait, 1.0), progress, backoff=False, failed=False, sweep=sweep
            )
        elif code in NEEDS_A_PERSON:
            # Told when the problem is new to the publication: its last error is on record, so
            # neither another replica nor a restart tells the requester again (a different
            # failure in between, a timeout say, makes it new again).
            if pub.last_error != code:
                log.error(
                    "cannot show change %s in Slack: %s (%s)",
                    pub.number,
                    NEEDS_A_PERSON[code],
                    code,
                )
                await self._tell_requester(pub, code)
            await self._retry_later(pub, code, 60.0, progress, sweep=sweep)
        else:
            await self._retry_later(pub, code, RETRY_FIRST, progress, sweep=sweep)

    async def _tell_requester(self, pub: Publication, code: str) -> None:
        """The person whose change cannot be shown hears why and what fixes it, once."""
        if code in ("invalid_auth", "not_authed", "token_revoked", "account_inactive"):
            return  # nothing can reach anyone until the token is fixed: the log says so
        try:
            change = await self.reading(_change, pub.number)
            text = replies.cannot_show(change, NEEDS_A_PERSON[code])
            await self.client.chat_postMessage(channel=change.requester, text=text)
        except Exception as error:  # telling is best effort; the log line above stands
            log.warning("could not tell the requester of change %s: %s", pub.number, error)

    async def _retry_later(
        self,
        pub: Publication,
        why: str,
        first: float,
        progress: dict[str, object],
        backoff: bool = True,
        failed: bool = True,
        sweep: _Sweep | None = None,
    ) -> None:
        delay = min(first * (2**pub.attempts if backoff else 1), RETRY_MAX)
        due = self.clock.now() + timedelta(seconds=delay)
        log.warning("change %s: not shown yet (%s); retrying in %.0fs", pub.number, why, delay)
        attempts = pub.attempts + 1 if failed else pub.attempts
        await self._release(
            pub.number, due_at=due, attempts=attempts, error=why, progress=progress, sweep=sweep
        )


@dataclass
class _Release:
    """A lease to give back (`outbox.release`'s arguments)."""

    number: int
    owner: str
    now: datetime
    options: dict[str, Any]


@dataclass
class _Sweep:
    """The database work of one sweep's deliveries: what they read, loaded together before
    (or the error loading one raised), and the releases they owe, written together after."""

    loaded: dict[int, _Loaded | Exception]
    releases: list[_Release] = field(default_factory=list)


def _release_all(session: Session, releases: Sequence[_Release]) -> None:
    """Give these leases back, each in a statement of its own (see outbox.release)."""
    for release in releases:
        outbox.release(session, release.number, release.owner, release.now, **release.options)


def _redraw(session: Session, numbers: list[int], at: datetime) -> None:
    outbox.redraw(session, numbers, at)
    session.commit()


def _change(session: Session, number: int) -> Change:
    return SqlChanges(session).get(number)
