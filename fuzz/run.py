"""Run one atheris target with a seed corpus and a dictionary, and summarise the run as JSON.

    python fuzz/run.py TARGET --runs 2000 --seed 1 [--max-time S] [--corpus DIR]

The corpus folder keeps what libFuzzer found (new coverage) between runs; the summary reports the
runs executed, the duration, the corpus size (files and libFuzzer's own `corp:` count), and any crash.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fuzz.targets import KEYS, VENDORS, driver_topics, make_driver  # noqa: E402

SEED_PAYLOADS = [
    b'{"id":0,"output":true,"apower":182.4,"voltage":221.0,"current":0.83,"aenergy":{"total":1234.5},'
    b'"temperature":{"tC":41.2}}',
    b'{"method":"NotifyStatus","params":{"switch:0":{"output":false,"apower":0}}}',
    b'{"ENERGY":{"Total":3.2,"Power":[10,20],"Voltage":229,"Current":[0.1,0.2],"Factor":0.9}}',
    b'{"POWER1":"ON","POWER2":"OFF","Wifi":{"Signal":-60}}',
    b'{"smoke":true,"battery":90,"tamper":false,"battery_low":false,"linkquality":80}',
    b'{"water_leak":true,"temperature":21.5,"humidity":40,"contact":false}',
    b'{"type":"badge","badge":"12345","direction":"in","result":"granted"}',
    b'{"door":"open","locked":false}',
    b'{"state":"online"}', b"online", b"Online", b"true", b"ON",
    b'{"v":1,"edge":"edge-f3","seq":1,"sent_at":"2026-11-29T03:00:00Z","readings":[{"device":"plug-1",'
    b'"ts":"2026-11-29T03:00:00Z","metrics":{"power_w":1.5}}]}',
    b'{"v":1,"edge":"edge-f3","seq":2,"sent_at":"2026-11-29T03:00:00Z","events":[{"device":"door-1",'
    b'"ts":"2026-11-29T03:00:00Z","type":"door_forced"}]}',
    b'{"v":1,"id":"c1","device":"plug-1","action":"relay_off","issued_at":"2026-11-29T03:00:00Z",'
    b'"expires_at":"2026-11-29T03:01:00Z"}',
]


def topic_count(target: str) -> int:
    if target == "contract":
        from fuzz.targets import CONTRACT_TOPICS

        return len(CONTRACT_TOPICS)
    vendor = next(v for v in VENDORS if v.value == target)
    return len(driver_topics(make_driver(vendor)))


def seed_corpus(folder: Path, target: str) -> None:
    """Each seed payload on each of the target's topics. atheris' FuzzedDataProvider takes integers from
    the END of the input: for fewer than 256 topics the last byte picks the topic."""
    count = topic_count(target)
    for index in range(count):
        for number, payload in enumerate(SEED_PAYLOADS):
            (folder / f"seed-{index:02d}-{number:02d}").write_bytes(payload + bytes([index]))


def write_dictionary(path: Path) -> None:
    lines = []
    for word in KEYS:
        escaped = word.encode("unicode_escape").decode().replace('"', '\\"')
        lines.append(f'"{escaped}"')
        lines.append(f'"\\"{escaped}\\":"')
    path.write_text("\n".join(lines) + "\n")


def run(target: str, *, runs: int | None, seed: int, max_time: int | None, corpus: Path | None,
        timeout: float = 3600) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"floorwatch-fuzz-{target}-"))
    corpus = corpus or work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = work / "seeds"
    seeds.mkdir()
    seed_corpus(seeds, target)
    dictionary = work / "keys.dict"
    write_dictionary(dictionary)
    flags = [f"-seed={seed}", f"-dict={dictionary}", "-print_final_stats=1", f"-artifact_prefix={work}/",
             "-max_len=4096", "-rss_limit_mb=2048"]
    if runs is not None:
        flags.append(f"-runs={runs}")
    if max_time is not None:
        flags.append(f"-max_total_time={max_time}")
    command = [sys.executable, str(HERE / "harness.py"), target, *flags, str(corpus), str(seeds)]
    started = time.monotonic()
    process = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    log = process.stderr + process.stdout
    done = re.findall(r"Done (\d+) runs in (\d+) second", log)
    corp = re.findall(r"corp: (\d+)/(\d+)(\w+)", log)
    cov = re.findall(r"cov: (\d+)", log)
    crashes = sorted(str(p) for p in work.glob("crash-*"))
    corpus_files = sum(1 for _ in corpus.iterdir())
    if process.returncode == 0 and not crashes:
        shutil.rmtree(work, ignore_errors=True)  # kept on a crash: the artifact is the reproducer
    return {
        "target": target,
        "returncode": process.returncode,
        "runs": int(done[-1][0]) if done else None,
        "seconds": round(seconds, 1),
        "corpus_files": corpus_files,
        "corpus_units": int(corp[-1][0]) if corp else None,
        "coverage": int(cov[-1]) if cov else None,
        "crashes": crashes,
        "tail": log[-3000:] if process.returncode else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-time", type=int)
    parser.add_argument("--corpus", type=Path)
    args = parser.parse_args(argv)
    summary = run(args.target, runs=args.runs, seed=args.seed, max_time=args.max_time, corpus=args.corpus)
    print(json.dumps(summary, indent=2))
    return 0 if summary["returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
