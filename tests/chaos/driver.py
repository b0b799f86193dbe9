"""What the chaos run does to the service, for a bounded time, and what it saw happen.

Per tenant, an admin's chat (installing the bot, orders whose confirmation is pressed twice and
delivered to both instances, auto-recharge turned on, usage files sent as attachments; a card's
button pressed as Teams does with Universal Actions, an `adaptiveCard/action` invoke answered
with the next card, or as a client without them, its Action.Submit fallback) and the
tenant's own tooling pushing usage to the HTTP endpoint; across tenants, an operator running
command-line imports; and a killer: kill -9 of an instance at random, of the instance an alert
post is held open for, of the instance an import or an order is half-way through on, and of
command-line imports half-way; every instance is started again.

Every choice comes from a random generator seeded from the run's seed and the lane, so a seed
repeats the plan of a run (not the interleaving of its processes).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.usage_api import tenant_key
from locales import Localizer
from tests.chaos.connector import ChaosConnector
from tests.chaos.exports import TenantUsage
from tests.chaos.processes import Instance, pid_of_peer, start_cli_import

logger = logging.getLogger(__name__)

# The Agents Playground's default user: a Billing Administrator in the embedded demo directory
# every tenant is seeded with in local mode (storage/embedded_directory.py, PLAYGROUND_USERS).
ADMIN_AAD = "00000000-0000-0000-0000-0000000000020"
BOT_ID = "28:chaos-bot"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)
# Purchases of $50 a burst places at most while its three imports run.
BURST_ORDERS = 8
# What `_request` answers for a 429, followed by the Retry-After it gave.
THROTTLED = "throttled:"
# The share of card presses sent as Teams sends an Action.Execute (an invoke); the others are
# the Action.Submit fallback's message.
INVOKE_SHARE = 0.5
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
EN = Localizer.from_directory().translator("en-US")


@dataclass
class Tenant:
    index: int
    tenant_id: str
    conversation_id: str
    usage: TenantUsage
    auto_recharge: bool
    newest_chunk: int = 0


@dataclass
class ImportRun:
    route: str
    """cli, http or chat."""
    tenant_id: str
    name: str
    body: bytes
    outcome: str = "running"
    """completed, killed, refused (nobody listening: nothing started) or failed."""
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Stats:
    """What happened when, for the per-minute table."""

    started: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.events.append((time.monotonic() - self.started, what))

    def totals(self) -> Counter[str]:
        return Counter(what for _, what in self.events)

    def per_minute(self) -> dict[int, Counter[str]]:
        minutes: dict[int, Counter[str]] = {}
        for at, what in self.events:
            minutes.setdefault(int(at // 60), Counter())[what] += 1
        return minutes


class Driver:
    def __init__(
        self,
        *,
        seed: int,
        tenants: int,
        instances: list[Instance],
        connector: ChaosConnector,
        cli_env: dict[str, str],
        usage_secret: str,
        workdir: Path,
        sending_now,
    ) -> None:
        """`sending_now()` returns the message ids of deliveries claimed and not yet recorded:
        read right after a kill, they are what its sender had on the wire."""
        self.seed = seed
        self.instances = instances
        self.connector = connector
        self.cli_env = cli_env
        self.usage_secret = usage_secret
        self.workdir = workdir
        self.sending_now = sending_now
        self.stats = Stats()
        self.imports: list[ImportRun] = []
        self.pressed: list[tuple[str, str]] = []
        """(tenant, nonce) of every order confirmation pressed."""
        self.killed_mid_send: set[str] = set()
        self.removed: set[str] = set()
        """Tenants whose chat answered 403 at some point (alerts reach nobody until reinstall)."""
        self.stopping = False
        self._answers: dict[str, dict[str, Any]] = {}
        """The answer of each invoke that got one, by the invoke's id."""
        self._ids = itertools.count(1)
        self._cli_seconds: list[float] = []
        self._killing: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.tenants = [
            Tenant(
                index=n,
                tenant_id=str(uuid.UUID(int=self._rng("tenant", n).getrandbits(128), version=4)),
                conversation_id=f"a:chaos-personal-{n}",
                usage=TenantUsage(seed, n),
                auto_recharge=n % 2 == 0,
            )
            for n in range(tenants)
        ]
        connector.on_hold = self._on_hold
        connector.on_removed = self._on_removed
        self.session: aiohttp.ClientSession | None = None

    def _rng(self, *lane: object) -> random.Random:
        digest = hashlib.sha256("/".join(map(str, (self.seed, *lane))).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    # --- the run ----------------------------------------------------------------------------

    async def run(self, seconds: float) -> None:
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            self.session = session
            lanes = [asyncio.create_task(self._chat_lane(t)) for t in self.tenants]
            lanes += [asyncio.create_task(self._http_lane(t)) for t in self.tenants]
            lanes += [
                asyncio.create_task(self._cli_lane()),
                asyncio.create_task(self._kill_lane()),
            ]
            await asyncio.sleep(seconds)
            self.stopping = True
            logger.info("chaos time is up: letting operations in progress finish")
            await asyncio.gather(*lanes)
            if self._tasks:
                await asyncio.gather(*list(self._tasks))
            for instance in self.instances:
                if not instance.up:
                    await self._start(instance)
            # A chat that answered 403 marked itself inactive: install the bot there again.
            for tenant in self.tenants:
                if tenant.tenant_id in self.removed:
                    await self._install(tenant, self._rng("final-install"))

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the admin's chat ---------------------------------------------------------------------

    async def _chat_lane(self, tenant: Tenant) -> None:
        rng = self._rng("chat", tenant.index)
        for _attempt in range(20):
            if await self._install(tenant, rng):
                break
            await asyncio.sleep(0.5)
        await self._order(tenant, rng, 500)
        if tenant.auto_recharge:
            for _attempt in range(5):
                if await self._turn_on_auto_recharge(tenant, rng):
                    break
        while not self.stopping:
            roll = rng.random()
            if roll < 0.55:
                await self._order(tenant, rng, rng.choice((50, 75, 100, 150, 200, 300, 500)))
            elif roll < 0.85:
                await self._chat_import(tenant, rng)
            else:
                await self._burst(tenant, rng)
            await asyncio.sleep(rng.uniform(0.3, 2.0))

    async def _burst(self, tenant: Tenant, rng: random.Random) -> None:
        """The same export pushed three times at once while the admin buys $50 again and again:
        the low, contended balance where a torn read of the account and its lots shows."""
        self.stats.note("burst")
        name, body = self._file(tenant, rng, chunks=3)
        key = tenant_key(self.usage_secret, tenant.tenant_id)
        imports = [
            asyncio.create_task(self._http_import(tenant, rng, key, name, body)) for _ in range(3)
        ]
        # $50 every 0.2 s while the imports run (the reproduction), a handful at most:
        # an import waiting out a 429 must not turn the burst into a flood of purchases that
        # keeps the balance far above every threshold and trigger.
        for _ in range(BURST_ORDERS):
            if all(task.done() for task in imports):
                break
            await self._order(tenant, rng, 50)
            await asyncio.sleep(0.2)
        await asyncio.gather(*imports)

    def _activity(self, tenant: Tenant, **fields: Any) -> dict[str, Any]:
        return {
            "type": "message",
            "id": f"chaos-{next(self._ids)}",
            "timestamp": "2026-11-23T10:00:00.000Z",
            "serviceUrl": self.connector.url,
            "channelId": "msteams",
            "from": {"id": "29:alex", "name": "Alex Wilber", "aadObjectId": ADMIN_AAD},
            "conversation": {
                "id": tenant.conversation_id,
                "conversationType": "personal",
                "tenantId": tenant.tenant_id,
            },
            "recipient": {"id": BOT_ID, "name": "Communications Credits"},
            "locale": "en-US",
            "channelData": {"tenant": {"id": tenant.tenant_id}},
            **fields,
        }

    def _press(self, tenant: Tenant, data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        """A press on a card's button: an invoke (Universal Actions) or the fallback's message."""
        if rng.random() < INVOKE_SHARE:
            self.stats.note("press invoke")
            value = {
                "action": {"type": "Action.Execute", "verb": "form", "data": data},
                "trigger": "manual",
            }
            return self._activity(
                tenant, type="invoke", name="adaptiveCard/action", value=value, replyToId="card"
            )
        self.stats.note("press submit")
        return self._activity(tenant, value=data)

    def _replies(self, activity: dict[str, Any]) -> list[dict[str, Any]]:
        """What a turn answered: the messages it posted, and the card its invoke answered with."""
        replies = list(self.connector.replies.get(activity["id"], []))
        answer = self._answers.get(activity["id"])
        if answer is not None and answer.get("type") == ADAPTIVE_CARD:
            replies.append(
                {"attachments": [{"contentType": ADAPTIVE_CARD, "content": answer["value"]}]}
            )
        return replies

    async def _install(self, tenant: Tenant, rng: random.Random) -> bool:
        self.stats.note("install")
        activity = self._activity(tenant, type="installationUpdate", action="add")
        return await self._post(self._pick(rng), activity) == "ok"

    async def _order(self, tenant: Tenant, rng: random.Random, dollars: int) -> None:
        self.stats.note("order")
        first = self._pick(rng)
        ask = self._activity(tenant, text=f"add funds {dollars}")
        if await self._post(first, ask) != "ok":
            return
        place = _submit(self._replies(ask), "add_funds_confirm", "place")
        if place is None:
            self.stats.note("order without confirmation")
            return
        self.pressed.append((tenant.tenant_id, str(place.get("nonce"))))
        press = self._press(tenant, place, rng)
        again = self._press(tenant, place, rng)
        other = next((i for i in self.instances if i is not first), first)
        if rng.random() < 0.06:
            # Between the gateway's charge and the booking, if the moment is right.
            self._spawn(self._kill_later(first, rng.uniform(0.0, 0.4), "order"))

        async def second_press() -> None:
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await self._post(self._pick(rng), again)

        # The same activity to both instances (a redelivery), and the button pressed twice.
        await asyncio.gather(self._post(first, press), self._post(other, press), second_press())

    async def _turn_on_auto_recharge(self, tenant: Tenant, rng: random.Random) -> bool:
        self.stats.note("auto-recharge on")
        instance = self._pick(rng)
        ask = self._activity(tenant, text="auto-recharge")
        if await self._post(instance, ask) != "ok":
            return False
        cards = _cards(self._replies(ask))
        form = _submit(self._replies(ask), "auto_recharge")
        methods = [c["value"] for card in cards for c in _choices(card, "method")]
        cards_only = [m for m in methods if m.startswith("card:")]
        if form is None or not cards_only:
            return False
        # A trigger the usage crosses often, and a recharge that lifts the balance well above.
        values = {"enabled": "true", "recharge_with": "300.00", "trigger": "150.00"}
        review = self._press(tenant, {**form, **values, "method": cards_only[0]}, rng)
        if await self._post(instance, review) != "ok":
            return False
        save = _submit(self._replies(review), "auto_recharge_confirm", "save")
        if save is None:
            return False
        return await self._post(instance, self._press(tenant, save, rng)) == "ok"

    async def _chat_import(self, tenant: Tenant, rng: random.Random) -> None:
        name, body = self._file(tenant, rng, chunks=2)
        self.connector.files[name] = body
        run = ImportRun("chat", tenant.tenant_id, name, body)
        self.imports.append(run)
        self.stats.note("import chat")
        activity = self._activity(
            tenant,
            attachments=[
                {
                    "contentType": "application/vnd.microsoft.teams.file.download.info",
                    "name": name,
                    "content": {
                        "downloadUrl": f"{self.connector.url}/files/{name}",
                        "uniqueId": str(uuid.UUID(int=rng.getrandbits(128))),
                        "fileType": "csv",
                    },
                }
            ],
        )
        instance = self._pick(rng)
        if rng.random() < 0.06:
            self._spawn(self._kill_later(instance, rng.uniform(0.2, 1.5), "import"))
        started = time.monotonic()
        result = await self._post(instance, activity)
        run.seconds = time.monotonic() - started
        if result != "ok":
            run.outcome = {"cut": "killed", "refused": "refused"}.get(result, "failed")
            run.detail = result
            return
        texts = [t for card in _cards(self.connector.replies.get(activity["id"], [])) for t in
                 _texts(card)]  # fmt: skip
        replies = self.connector.replies.get(activity["id"], [])
        said = [str(r.get("text")) for r in replies if r.get("text")]
        if EN("usage.report_title") in texts:
            run.outcome = "completed"
        else:
            run.outcome, run.detail = "failed", "; ".join(said) or "no report card"

    # --- the tenant's tooling: the HTTP endpoint -------------------------------------------

    async def _http_lane(self, tenant: Tenant) -> None:
        rng = self._rng("http", tenant.index)
        key = tenant_key(self.usage_secret, tenant.tenant_id)
        await asyncio.sleep(rng.uniform(2.0, 5.0))  # after the chat has bought the first funds
        while not self.stopping:
            name, body = self._file(tenant, rng, chunks=2)
            await self._http_import(tenant, rng, key, name, body)
            await asyncio.sleep(rng.uniform(1.0, 4.0))

    async def _http_import(
        self,
        tenant: Tenant,
        rng: random.Random,
        key: str,
        name: str,
        body: bytes,
        *,
        again: bool = True,
    ) -> None:
        """One push to the endpoint; cut by a kill, the tooling pushes the same file again."""
        run = ImportRun("http", tenant.tenant_id, name, body)
        self.imports.append(run)
        self.stats.note("import http")
        instance = self._pick(rng)
        if again and rng.random() < 0.06:
            self._spawn(self._kill_later(instance, rng.uniform(0.1, 1.0), "import"))
        started = time.monotonic()
        while True:
            result = await self._request(
                instance,
                f"/api/tenants/{tenant.tenant_id}/usage",
                data=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
            )
            if not result.startswith(THROTTLED):
                break
            # Too many uploads of this tenant at once (429): as its tooling would, wait as
            # long as Retry-After says and push the same file again.
            self.stats.note("import throttled")
            await asyncio.sleep(float(result.removeprefix(THROTTLED) or 30))
            instance = self._pick(rng)
        run.seconds = time.monotonic() - started
        run.outcome = {"ok": "completed", "cut": "killed", "refused": "refused"}.get(
            result, "failed"
        )
        run.detail = "" if result == "ok" else result
        if run.outcome in ("killed", "refused") and again:
            await self._http_import(tenant, rng, key, name, body, again=False)

    # --- the operator: command-line imports ----------------------------------------------

    async def _cli_lane(self) -> None:
        rng = self._rng("cli")
        await asyncio.sleep(rng.uniform(3.0, 6.0))
        running: set[asyncio.Task] = set()
        while not self.stopping:
            if len(running) < 2:
                tenant = rng.choice(self.tenants)
                kill_at = None
                if rng.random() < 0.35:
                    # Half-way: a moment inside the typical duration of a whole import.
                    typical = statistics.median(self._cli_seconds) if self._cli_seconds else 4.0
                    kill_at = rng.uniform(0.3, 0.9) * typical
                name, body = self._file(tenant, rng, chunks=4)
                task = asyncio.create_task(self._cli_import(tenant, name, body, kill_at))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.sleep(rng.uniform(1.5, 4.0))
        if running:
            await asyncio.gather(*running)

    async def _cli_import(
        self, tenant: Tenant, name: str, body: bytes, kill_at: float | None
    ) -> None:
        """One command-line import; killed after `kill_at` seconds, then run again whole, as an
        operator would after a crash (the second run must complete)."""
        path = self.workdir / "files" / name
        path.write_bytes(body)
        run = ImportRun("cli", tenant.tenant_id, name, body)
        self.imports.append(run)
        self.stats.note("import cli")
        stderr = self.workdir / "logs" / f"cli-{name}-{next(self._ids)}.log"
        started = time.monotonic()
        process = await start_cli_import(self.cli_env, path, tenant.tenant_id, stderr)
        try:
            async with asyncio.timeout(kill_at):  # None: no limit
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            run.outcome, run.seconds = "killed", time.monotonic() - started
            self.stats.note("kill cli")
            await self._cli_import(tenant, name, body, None)
            return
        run.seconds = time.monotonic() - started
        if process.returncode == 0:
            run.outcome = "completed"
            self._cli_seconds.append(run.seconds)
            report = json.loads(out)
            run.detail = f"{report['charged']} charged, {report['already_charged']} before"
        else:
            run.outcome = "failed"
            tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
            run.detail = f"exit {process.returncode}: " + " | ".join(tail)

    def _file(self, tenant: Tenant, rng: random.Random, *, chunks: int) -> tuple[str, bytes]:
        # Mostly new usage just after the newest chunk; sometimes an older window again.
        if rng.random() < 0.7:
            first = tenant.newest_chunk
            tenant.newest_chunk += 1
        else:
            first = rng.randrange(0, tenant.newest_chunk + 1)
        name = f"PSTN.calls.{tenant.index}.{first}-{first + chunks - 1}.{next(self._ids)}.csv"
        return name, tenant.usage.file(first, chunks)

    # --- kills ------------------------------------------------------------------------------

    async def _kill_lane(self) -> None:
        rng = self._rng("kill")
        while not self.stopping:
            await asyncio.sleep(rng.uniform(8.0, 16.0))
            victim = rng.choice(self.instances)
            # Another kill may be restarting the other instance: try again in a moment.
            for _attempt in range(20):
                if self.stopping or await self._kill(victim, "instance", rng):
                    break
                await asyncio.sleep(0.5)

    async def _kill_later(self, instance: Instance, delay: float, why: str) -> None:
        await asyncio.sleep(delay)
        await self._kill(instance, why, self._rng("restart", why, time.monotonic()))

    async def _kill(self, instance: Instance, why: str, rng: random.Random) -> bool:
        """kill -9, then a restart after a moment; False when the kill would leave nobody."""
        others_up = any(i.up for i in self.instances if i is not instance)
        if self.stopping or instance.name in self._killing or not instance.up or not others_up:
            return False  # one instance always serves: the run measures faults, not an outage
        self._killing.add(instance.name)
        try:
            instance.kill()
            self.stats.note(f"kill {why}")
            self.killed_mid_send |= await self.sending_now()
            await instance.reap()
            # A claim the dead process had on the wire to storage lands a moment later.
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            self.killed_mid_send |= await self.sending_now()
            await self._start(instance)
        finally:
            self._killing.discard(instance.name)
        return True

    async def _start(self, instance: Instance) -> None:
        await instance.start()
        self.stats.note("restart")

    async def _on_hold(self, message_id: str, peer_port: int) -> None:
        """The connector holds an alert post open: kill its sender, half the time."""
        rng = self._rng("hold", message_id)
        if self.stopping or rng.random() >= 0.6:
            return
        pids = {i.pid: i for i in self.instances if i.pid is not None}
        owner = pid_of_peer(peer_port, list(pids))
        if owner is not None:
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            await self._kill(pids[owner], "sender", rng)

    def _on_removed(self, conversation_id: str) -> None:
        tenant = next((t for t in self.tenants if t.conversation_id == conversation_id), None)
        if tenant is None:
            return
        self.removed.add(tenant.tenant_id)
        self.stats.note("chat removed (403)")

        async def reinstall() -> None:
            await asyncio.sleep(2.0)
            await self._install(tenant, self._rng("reinstall", time.monotonic()))

        if not self.stopping:
            self._spawn(reinstall())

    # --- requests -----------------------------------------------------------------------------

    def _pick(self, rng: random.Random) -> Instance:
        up = [i for i in self.instances if i.up]
        return rng.choice(up or self.instances)

    async def _post(self, instance: Instance, activity: dict[str, Any]) -> str:
        answer: dict[str, Any] = {}
        outcome = await self._request(instance, "/api/messages", json=activity, answer=answer)
        if activity.get("type") == "invoke" and answer:
            self._answers[activity["id"]] = answer
        return outcome

    async def _request(
        self, instance: Instance, path: str, *, answer: dict | None = None, **kwargs: Any
    ) -> str:
        """ok, refused (nobody listening), cut (the instance died during it), or the error.
        `answer` receives a JSON answer's object (an invoke's)."""
        assert self.session is not None
        generation = instance.generation
        try:
            async with self.session.post(instance.url + path, **kwargs) as response:
                text = await response.text()
                if response.status in (200, 201):
                    if answer is not None and response.content_type == "application/json":
                        body = json.loads(text)
                        answer.update(body if isinstance(body, dict) else {})
                    return "ok"
                if response.status == 429:
                    return THROTTLED + response.headers.get("Retry-After", "")
                return f"HTTP {response.status}: {' '.join(text.split())[:200]}"
        except aiohttp.ClientConnectorError:
            self.stats.note("refused")
            return "refused"
        except (aiohttp.ClientError, TimeoutError) as error:
            if instance.generation != generation:
                self.stats.note("request cut")
                return "cut"
            return f"{type(error).__name__}: {error}"


# --- reading the cards the bot sent -------------------------------------------------------


def _cards(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        attachment["content"]
        for reply in replies
        for attachment in reply.get("attachments") or []
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
    ]


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _submit(replies: list[dict[str, Any]], form: str, action: str | None = None) -> dict | None:
    for card in _cards(replies):
        for node in _walk(card):
            data = node.get("data")
            if (
                node.get("type") == "Action.Execute"
                and isinstance(data, dict)
                and data.get("form") == form
                and (action is None or data.get("action") == action)
            ):
                return dict(data)
    return None


def _choices(card: dict[str, Any], input_id: str) -> list[dict[str, str]]:
    for node in _walk(card):
        if node.get("id") == input_id and isinstance(node.get("choices"), list):
            return node["choices"]
    return []


def _texts(card: dict[str, Any]) -> list[str]:
    return [
        node["text"]
        for node in _walk(card)
        if node.get("type") == "TextBlock" and isinstance(node.get("text"), str)
    ]
