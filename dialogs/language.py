"""The `language` flow: choose one of the six languages, or go back to the client's."""

from __future__ import annotations

from babel import Locale
from botbuilder.core import StatePropertyAccessor, TurnContext
from botbuilder.dialogs import (
    ComponentDialog,
    Dialog,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)

from cards import CardRenderer
from dialogs.card_actions import say, show
from dialogs.commands import normalize
from dialogs.turn import set_translator, translator_of
from locales import LANGUAGES, Localizer

AUTOMATIC = "auto"


class LanguagePreference:
    """The language a user chose, kept in user state; None means "follow the Teams client"."""

    def __init__(self, accessor: StatePropertyAccessor) -> None:
        self._accessor = accessor

    async def get(self, turn_context: TurnContext) -> str | None:
        return await self._accessor.get(turn_context, lambda: None)

    async def set(self, turn_context: TurnContext, tag: str | None) -> None:
        await self._accessor.set(turn_context, tag)


class LanguageNames:
    """Every way a user may name a language: tags, native names, names in all six languages."""

    def __init__(self, localizer: Localizer) -> None:
        self._names: dict[str, str] = {}
        for lang in LANGUAGES:
            locale = Locale.parse(lang.babel)
            names = {lang.tag, lang.babel, lang.tag.split("-")[0], lang.native_name}
            for other in LANGUAGES:
                shown_in = Locale.parse(other.babel)
                names.add(locale.get_display_name(shown_in))
                names.add(Locale.parse(lang.babel.split("_")[0]).get_display_name(shown_in))
            for name in names:
                self._names.setdefault(normalize(name), lang.tag)
        for translator in localizer.all():
            for word in translator.gettext("language.automatic_words").split("|"):
                self._names.setdefault(normalize(word), AUTOMATIC)
            self._names.setdefault(normalize(translator.gettext("language.automatic")), AUTOMATIC)

    def resolve(self, text: str) -> str | None:
        """A language tag, `auto`, or None when the text names no language we speak."""
        return self._names.get(normalize(text))


class LanguageDialog(ComponentDialog):
    def __init__(
        self,
        preference: LanguagePreference,
        localizer: Localizer,
        cards: CardRenderer,
    ) -> None:
        super().__init__(LanguageDialog.__name__)
        self._preference = preference
        self._localizer = localizer
        self._cards = cards
        self._names = LanguageNames(localizer)
        self.add_dialog(
            WaterfallDialog(
                WaterfallDialog.__name__,
                [self.choose_step, self.apply_step],
            )
        )
        self.initial_dialog_id = WaterfallDialog.__name__

    async def choose_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        requested = (step.options or {}).get("language") if isinstance(step.options, dict) else None
        if requested:
            # "language pt" or a press on the chooser card: no question to ask.
            return await step.next(requested)
        t = translator_of(step.context)
        preference = await self._preference.get(step.context)
        current = t.language.native_name if preference else t.gettext("language.automatic")
        await show(
            step.context,
            self._cards.attachment("language", t, languages=LANGUAGES, current=current),
        )
        return Dialog.end_of_turn

    async def apply_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        value = step.context.activity.value
        answer = step.result
        if isinstance(value, dict) and isinstance(value.get("language"), str):
            answer = value["language"]
        choice = self._names.resolve(answer) if isinstance(answer, str) else None
        if choice is None:
            t = translator_of(step.context)
            names = ", ".join(lang.native_name for lang in LANGUAGES)
            await say(step.context, t.gettext("language.unknown", languages=names))
            return await step.end_dialog()
        await self._apply(step.context, choice)
        return await step.end_dialog(choice)

    async def _apply(self, turn_context: TurnContext, choice: str) -> None:
        if choice == AUTOMATIC:
            await self._preference.set(turn_context, None)
            t = self._localizer.translator(turn_context.activity.locale)
            set_translator(turn_context, t)
            await say(
                turn_context, t.gettext("language.automatic_set", language=t.language.native_name)
            )
            return
        await self._preference.set(turn_context, choice)
        t = self._localizer.translator(choice)
        set_translator(turn_context, t)
        await say(turn_context, t.gettext("language.changed"))
