"""The licences flow: see who holds the Communications Credits licence, assign or remove it.

List (filter, search, pages) → confirmation (how many, who, seats after, optional prerequisite)
→ per-user result in place of the confirmation. User ids from cards are re-checked against the
tenant's own directory before anything changes.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)
from botbuilder.schema import Attachment

from cards import CardRenderer
from credits.licence_service import LicenceService, Outcome, Prerequisite, UserResult
from credits.licences import Standing, UserLicences
from dialogs.card_actions import note, say, show
from dialogs.forms import actor_of, is_submit, text_of, wait_again
from dialogs.turn import tenant_id_of, translator_of
from locales import Translator

logger = logging.getLogger(__name__)

LIST_FORM = "licences"
CONFIRM_FORM = "licences_confirm"
PAGE_SIZE = 8
# One confirmation changes at most this many users, so a turn stays well inside Teams' patience.
MAX_BATCH = 50
FILTERS = ("eligible", "missing", "licensed", "all")
_STANDINGS = {
    "eligible": {Standing.ELIGIBLE},
    "missing": {Standing.MISSING_PREREQUISITE, Standing.NO_USAGE_LOCATION},
    "licensed": {Standing.LICENSED},
    "all": set(Standing),
}


class LicencesDialog(ComponentDialog):
    def __init__(self, licences: LicenceService, cards: CardRenderer) -> None:
        super().__init__(LicencesDialog.__name__)
        self._licences = licences
        self._cards = cards
        self.add_dialog(
            WaterfallDialog(
                WaterfallDialog.__name__, [self.list_step, self.choose_step, self.confirm_step]
            )
        )
        self.initial_dialog_id = WaterfallDialog.__name__

    async def list_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = step.options if isinstance(step.options, dict) else {}
        view = {
            "filter": options.get("filter") if options.get("filter") in FILTERS else "eligible",
            "query": text_of(options.get("query"))[:100],
            "page": max(0, int(options.get("page") or 0)),
        }
        step.values["view"] = view
        step.values["nonce"] = options.get("nonce") or uuid.uuid4().hex
        t = translator_of(step.context)
        overview = await self._licences.overview(tenant_id_of(step.context.activity))
        users = _matching(overview.users, view["filter"], view["query"])
        pages = max(1, -(-len(users) // PAGE_SIZE))
        view["page"] = min(view["page"], pages - 1)
        shown = users[view["page"] * PAGE_SIZE : (view["page"] + 1) * PAGE_SIZE]
        card = self._cards.attachment(
            "licences",
            t,
            nonce=step.values["nonce"],
            counts={
                "licensed": overview.count(Standing.LICENSED),
                "eligible": overview.count(Standing.ELIGIBLE),
                "missing": overview.count(Standing.MISSING_PREREQUISITE),
                "no_location": overview.count(Standing.NO_USAGE_LOCATION),
                "seats": overview.free_seats,
            },
            view=view,
            filters=FILTERS,
            users=[_choice(t, u) for u in shown],
            page_text=t.ngettext(
                "licences.page",
                len(users),
                page=t.number(view["page"] + 1),
                pages=t.number(pages),
                total=t.number(len(users)),
            ),
            has_previous=view["page"] > 0,
            has_next=view["page"] < pages - 1,
            message=options.get("message") or "",
        )
        await show(step.context, card)
        return Dialog.end_of_turn

    async def choose_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        if not is_submit(value, LIST_FORM, step.values["nonce"]):
            return await self._use_the_card(step)
        t = translator_of(step.context)
        view = dict(step.values["view"])
        action = value.get("action")
        if action in ("search", "previous", "next"):
            return await step.replace_dialog(
                self.initial_dialog_id, {**_moved(view, value), "nonce": step.values["nonce"]}
            )
        tenant_id = tenant_id_of(step.context.activity)
        if action == "assign_all_eligible":
            overview = await self._licences.overview(tenant_id)
            user_ids = [u.user.id for u in overview.users if u.standing == Standing.ELIGIBLE]
            action = "assign"
        elif action in ("assign", "remove"):
            user_ids = [u for u in text_of(value.get("users")).split(",") if u]
        else:
            return await self._use_the_card(step)
        if not user_ids:
            return await step.replace_dialog(
                self.initial_dialog_id,
                {**view, "nonce": step.values["nonce"], "message": t("licences.select_someone")},
            )
        user_ids = user_ids[:MAX_BATCH]
        overview = await self._licences.overview(tenant_id)
        by_id = {u.user.id: u for u in overview.users}
        chosen = [by_id[u] for u in user_ids if u in by_id]
        if len(chosen) != len(user_ids):
            # Ids that are not this tenant's users: a stale or forged card. Nothing changes.
            logger.warning("licence submit named users outside tenant %s", tenant_id)
            await say(step.context, t("licences.unknown_users"))
            return await step.end_dialog()
        step.values["pending"] = {"action": action, "user_ids": [u.user.id for u in chosen]}
        card = self._confirmation(t, step.values["nonce"], action, chosen, overview.free_seats)
        await show(step.context, card)
        return Dialog.end_of_turn

    def _confirmation(
        self,
        t: Translator,
        nonce: str,
        action: str,
        chosen: list[UserLicences],
        free_seats: int,
    ) -> Attachment:
        """The confirmation card: who, and the seats left once the change is made."""
        needs = action == "assign" and any(
            u.standing == Standing.MISSING_PREREQUISITE for u in chosen
        )
        takes_seat = sum(
            1 for u in chosen if u.standing in (Standing.ELIGIBLE, Standing.MISSING_PREREQUISITE)
        )
        seats_after = (
            free_seats - takes_seat
            if action == "assign"
            else free_seats + sum(1 for u in chosen if u.standing == Standing.LICENSED)
        )
        return self._cards.attachment(
            "licences_confirm",
            t,
            nonce=nonce,
            title=t.ngettext(
                f"licences.confirm_{action}", len(chosen), count=t.number(len(chosen))
            ),
            who=_names(t, [u.user.display_name for u in chosen]),
            seats_after=t("licences.seats_after", seats=max(seats_after, 0)),
            seats_short=seats_after < 0,
            offer_prerequisite=needs,
            prerequisites=[p.value for p in Prerequisite],
        )

    async def confirm_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        if not is_submit(value, CONFIRM_FORM, step.values["nonce"]):
            return await self._use_the_card(step)
        t = translator_of(step.context)
        if value.get("action") != "confirm":
            await say(step.context, t("cancelled"))
            return await step.end_dialog()
        pending = step.values["pending"]
        tenant_id = tenant_id_of(step.context.activity)
        actor = actor_of(step.context)
        if pending["action"] == "assign":
            choice = value.get("prerequisite")
            prerequisite = (
                Prerequisite(choice)
                if choice in {p.value for p in Prerequisite}
                else Prerequisite.NONE
            )
            results = await self._licences.assign(
                tenant_id, pending["user_ids"], actor=actor, prerequisite=prerequisite
            )
        else:
            results = await self._licences.remove(tenant_id, pending["user_ids"], actor=actor)
        card = self._cards.attachment(
            "licences_result",
            t,
            lines=[_result_line(t, r) for r in results],
            summary=_summary(t, results),
            phone_numbers=any(r.needs_phone_number for r in results),
        )
        await show(step.context, card, final=True)
        return await step.end_dialog()

    async def _use_the_card(self, step: WaterfallStepContext) -> DialogTurnResult:
        await note(step.context, translator_of(step.context)("licences.use_the_card"))
        return wait_again(step)


def _matching(users: list[UserLicences], filter_name: str, query: str) -> list[UserLicences]:
    wanted = _STANDINGS[filter_name]
    needle = query.casefold()
    return [
        u
        for u in users
        if u.standing in wanted
        and (
            not needle
            or needle in u.user.display_name.casefold()
            or needle in u.user.user_principal_name.casefold()
        )
    ]


def _choice(t: Translator, u: UserLicences) -> dict[str, str]:
    return {
        "value": u.user.id,
        "title": t(
            "licences.user_line",
            name=u.user.display_name,
            upn=u.user.user_principal_name,
            standing=_standingtext_of(t, u),
        ),
    }


def _standingtext_of(t: Translator, u: UserLicences) -> str:
    if u.standing == Standing.MISSING_PREREQUISITE:
        return t(f"licences.missing.{u.missing.value}")
    return t(f"licences.standing.{u.standing.value}")


def _names(t: Translator, names: list[str]) -> str:
    shown = ", ".join(names[:5])
    if len(names) <= 5:
        return shown
    more = len(names) - 5
    return t.ngettext("licences.and_more", more, names=shown, more=t.number(more))


def _result_line(t: Translator, r: UserResult) -> dict[str, str]:
    if r.outcome == Outcome.MISSING_PREREQUISITE:
        text = t(f"licences.missing.{r.missing.value}")
    else:
        text = t(f"licences.outcome.{r.outcome.value}")
    if r.is_e5 and r.outcome in (Outcome.ASSIGNED, Outcome.ALREADY_HAD):
        text += " " + t("licences.e5_note")
    good = r.outcome in (
        Outcome.ASSIGNED,
        Outcome.ASSIGNED_WITH_PREREQUISITE,
        Outcome.REMOVED,
        Outcome.ALREADY_HAD,
        Outcome.NOT_HELD,
    )
    return {"name": r.display_name, "text": text, "good": good}


def _summary(t: Translator, results: list[UserResult]) -> str:
    done = sum(
        1
        for r in results
        if r.outcome in (Outcome.ASSIGNED, Outcome.ASSIGNED_WITH_PREREQUISITE, Outcome.REMOVED)
    )
    return t.ngettext("licences.summary", done, done=t.number(done), total=t.number(len(results)))


def _moved(view: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """The list's view after a search or a page turn: query, filter and page."""
    moved = dict(view)
    moved["query"] = text_of(value.get("query"))[:100]
    moved["filter"] = value.get("filter") if value.get("filter") in FILTERS else "all"
    action = value.get("action")
    if action == "search":
        moved["page"] = 0
    else:
        moved["page"] += 1 if action == "next" else -1
    return moved
