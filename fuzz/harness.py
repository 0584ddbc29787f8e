"""Coverage-guided fuzzing (atheris/libFuzzer) of the contract decoder and each vendor driver.

    python fuzz/harness.py TARGET [libFuzzer flags...] [CORPUS_DIR]

TARGET is `contract` or a vendor (`shelly`, `tasmota`, `zigbee2mqtt`, `generic`). The last input
byte chooses a topic among the target's own (see fuzz/targets.py), the rest is the payload. A crash is
any exception other than DecodeError/ContractError, or a broken invariant (AssertionError).
Use fuzz/run.py to run with a seed corpus and dictionary and get a summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["gateway", "edge", "fuzz"]):
    from edge.config import Vendor
    from fuzz.targets import CONTRACT_TOPICS, check_contract, check_driver, driver_topics, make_driver

TARGETS = ["contract", *(v.value for v in Vendor)]


def one_input(target: str):  # type: ignore[no-untyped-def]
    if target == "contract":
        topics = CONTRACT_TOPICS

        def test(data: bytes) -> None:
            provider = atheris.FuzzedDataProvider(data)
            topic = topics[provider.ConsumeIntInRange(0, len(topics) - 1)]
            check_contract(topic, provider.ConsumeBytes(provider.remaining_bytes()))

        return test
    vendor = Vendor(target)
    driver = make_driver(vendor)
    driver_topic_list = driver_topics(driver)

    def test_driver(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        topic = driver_topic_list[provider.ConsumeIntInRange(0, len(driver_topic_list) - 1)]
        # One driver across inputs: its per-device transition state is fuzzed too.
        check_driver(driver, topic, provider.ConsumeBytes(provider.remaining_bytes()))

    return test_driver


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: harness.py {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus]")
    target = argv[1]
    test = one_input(target)
    atheris.Setup([argv[0], *argv[2:]], test)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
