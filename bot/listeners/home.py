"""App Home: my open changes, what waits for me, the reviews I owe, the next seven days of
the change calendar, and a New change button."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import queries
from bot.listeners.calendar import home_calendar
from bot.services import Services
from bot.views import home as home_view

#: App Home's line of DORA's metrics covers this many days.
MONTH_DAYS = 30


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)


async def home_opened(event: dict[str, Any], client: AsyncWebClient, services: Services) -> None:
    if event.get("tab", "home") != "home":
        return
    await publish_home(client, services, event["user"])


async def publish_home(client: AsyncWebClient, services: Services, user_id: str) -> None:
    actor = await services.directory.actor(user_id)
    mine = await services.query(queries.mine, user_id)
    awaiting = await services.query(queries.awaiting, actor, services.policy)
    owed = await services.query(queries.reviews_owed, user_id)
    calendar = await home_calendar(services, user_id)
    now = services.clock.now()
    month = await services.recent_metrics(MONTH_DAYS)
    mine_shown, awaiting_shown, owed_shown = await services.standings(mine, awaiting, owed)
    view = home_view.home(
        user_id,
        mine=mine_shown,
        awaiting_me=awaiting_shown,
        reviews_owed=owed_shown,
        policy=services.policy,
        now=now,
        month=month,
        calendar=calendar,
    )
    await client.views_publish(user_id=user_id, view=view)
