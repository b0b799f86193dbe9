// Validate Adaptive Cards with the official object model (npm `adaptivecards`, pinned).
//
// Usage: node tests/support/validate_cards.mjs < cards.json
//   stdin:  a JSON array of Adaptive Card objects
//   stdout: a JSON array of {"index": i, "errors": ["...", ...]}, one entry per card, in order
//   exit:   0 when the input was read (whatever the cards' errors), 2 when it was not a JSON array
//
// Each card is parsed with `AdaptiveCard.parse` and a `SerializationContext`; the parse events
// and the results of `validateProperties()` are reported, hints excepted. On top of the
// library's checks come the limits of Teams: a declared `version` no newer than 1.5 and a
// serialised size under 28 KB. The chart elements Teams renders (Chart.*) are unknown to the
// library, so they are registered as opaque elements: their type is accepted, their content
// is not checked.
//
// The package's `lib/` build is ES modules with extension-less imports, which Node cannot load;
// its `dist/` bundle is UMD and loads in plain Node. Parsing and validation need no DOM.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const AC = require("adaptivecards/dist/adaptivecards.js");

const TEAMS_MAX_VERSION = [1, 5];
const TEAMS_MAX_BYTES = 28 * 1024;
const TEAMS_CHART_TYPES = [
  "Chart.Line",
  "Chart.VerticalBar",
  "Chart.VerticalBar.Grouped",
  "Chart.HorizontalBar",
  "Chart.HorizontalBar.Stacked",
  "Chart.Pie",
  "Chart.Donut",
  "Chart.Gauge",
];

function elementRegistry() {
  const registry = new AC.CardObjectRegistry();
  AC.GlobalRegistry.populateWithDefaultElements(registry);
  for (const typeName of TEAMS_CHART_TYPES) {
    const Chart = class extends AC.CardElement {
      getJsonTypeName() {
        return typeName;
      }
      internalRender() {
        return undefined;
      }
    };
    registry.register(typeName, Chart, AC.Versions.v1_5);
  }
  return registry;
}

function eventText(event) {
  const name = AC.ValidationEvent[event.event] ?? String(event.event);
  return `${name}: ${event.message}`;
}

function teamsErrors(json) {
  const errors = [];
  const bytes = Buffer.byteLength(JSON.stringify(json), "utf8");
  if (bytes >= TEAMS_MAX_BYTES) {
    errors.push(`CardTooLarge: ${bytes} bytes; Teams accepts less than ${TEAMS_MAX_BYTES}`);
  }
  const version = json.version;
  const match = typeof version === "string" ? /^(\d+)\.(\d+)$/.exec(version) : null;
  if (match === null) {
    errors.push(`UnsupportedCardVersion: version must be a string such as "1.5", not ${JSON.stringify(version)}`);
  } else {
    const [major, minor] = [Number(match[1]), Number(match[2])];
    const [maxMajor, maxMinor] = TEAMS_MAX_VERSION;
    if (major > maxMajor || (major === maxMajor && minor > maxMinor)) {
      errors.push(`UnsupportedCardVersion: version ${version} is newer than ${maxMajor}.${maxMinor}, the latest Teams renders`);
    }
  }
  return errors;
}

function validateCard(json, registry) {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return ["NotAnObject: a card must be a JSON object"];
  }
  const errors = teamsErrors(json);
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  context.setElementRegistry(registry);
  card.parse(json, context);
  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    if (event.event !== AC.ValidationEvent.Hint) errors.push(eventText(event));
  }
  for (const event of card.validateProperties().validationEvents) {
    if (event.event !== AC.ValidationEvent.Hint) errors.push(eventText(event));
  }
  return errors;
}

function main() {
  let cards;
  try {
    cards = JSON.parse(readFileSync(0, "utf8"));
  } catch (error) {
    process.stderr.write(`validate_cards: stdin is not JSON: ${error.message}\n`);
    return 2;
  }
  if (!Array.isArray(cards)) {
    process.stderr.write("validate_cards: stdin must be a JSON array of cards\n");
    return 2;
  }
  const registry = elementRegistry();
  const results = cards.map((card, index) => ({ index, errors: validateCard(card, registry) }));
  process.stdout.write(JSON.stringify(results) + "\n");
  return 0;
}

process.exitCode = main();
