"""Benchmark: the command parser on adversarial messages, as a ratio to a normal message.

Prints figures; asserts nothing (tests/dialogs/test_regex_linearity.py holds the patterns to a
bound). "Adversarial" is the message of issue 13, "a" + "⨌" * 1998 + "a": normalising makes it
four times longer and a search for trailing punctuation went quadratic on it.

    .venv/bin/python -m tests.benchmarks.bench_command_parser
"""

from __future__ import annotations

import timeit

from dialogs.commands import MAX_COMMAND_CHARS, CommandParser, normalize
from locales import Localizer


def seconds(call, rounds: int = 5) -> float:
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(rounds, number)) / number


def main() -> None:
    parser = CommandParser.from_localizer(Localizer.from_directory())
    normal = ("add funds 500 for the support team please " * 50)[:2000]
    adversarial = "a" + "\u2a0c" * 1998 + "a"
    longest = "a" + "\u2a0c" * (MAX_COMMAND_CHARS - 2) + "a"
    rows = [
        ("parse, normal 2,000 characters", lambda: parser.parse(normal)),
        ("parse, adversarial 2,000 characters", lambda: parser.parse(adversarial)),
        ("parse, normal command 'add funds 500'", lambda: parser.parse("add funds 500")),
        (f"parse, adversarial {MAX_COMMAND_CHARS} characters", lambda: parser.parse(longest)),
        ("normalize, normal 2,000 characters", lambda: normalize(normal)),
        ("normalize, adversarial 2,000 characters", lambda: normalize(adversarial)),
    ]
    times = {name: seconds(call) for name, call in rows}
    for name, spent in times.items():
        print(f"{name:45s} {spent * 1e6:10.1f} µs")
    base = times["parse, normal 2,000 characters"]
    print(
        "worst case / normal message (2,000 characters): "
        f"{times['parse, adversarial 2,000 characters'] / base:.2f}"
    )
    print(
        f"longest parsed adversarial ({MAX_COMMAND_CHARS}) / normal command: "
        f"{times[f'parse, adversarial {MAX_COMMAND_CHARS} characters'] / times[rows[2][0]]:.1f}"
    )
    print(
        "normalize, adversarial / normal (2,000 characters): "
        f"{times['normalize, adversarial 2,000 characters'] / times[rows[4][0]]:.1f}"
    )


if __name__ == "__main__":
    main()
